package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/workers/payments"
)

func TestGatewayRefundsAChargeOnce(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ledger := postgres.NewChargeLedger(db)
	g := payments.NewGateway(ledger, payments.GatewayConfig{})
	ctx := context.Background()
	order := flashsale.NewOrderID(flashsale.NewUserID(11))

	if _, err := g.Refund(ctx, order, 500); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("refund of an order never charged: err = %v, want CONFLICT", err)
	}
	if out, err := g.Charge(ctx, order, 500); err != nil || out != payments.Approved {
		t.Fatalf("charge = %q, %v; want APPROVED", out, err)
	}
	if _, err := g.Refund(ctx, order, 501); flashsale.ErrorCode(err) != flashsale.EINVALID {
		t.Errorf("refund of more than was charged: err = %v, want BAD_USER_INPUT", err)
	}
	var made atomic.Int64
	var wg sync.WaitGroup
	for range 10 { // ten replicas refunding the same order at once
		wg.Go(func() {
			ok, err := g.Refund(ctx, order, 500)
			if err != nil {
				t.Errorf("refund: %v", err)
			}
			if ok {
				made.Add(1)
			}
		})
	}
	wg.Wait()
	if got := made.Load(); got != 1 {
		t.Errorf("refunds made = %d, want 1", got)
	}
	if n, err := ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Errorf("refunds in the ledger = %d, %v; want 1", n, err)
	}

	declined := flashsale.NewOrderID(flashsale.NewUserID(12))
	if _, err := payments.NewGateway(ledger, payments.GatewayConfig{FailureRate: 1}).Charge(ctx, declined, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refund(ctx, declined, 300); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("refund of a declined charge: err = %v, want CONFLICT", err)
	}
}

// A void before any charge refuses every later charge; a void after a charge reports it.
func TestGatewayVoidRefusesLaterCharges(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	ledger := postgres.NewChargeLedger(db)
	g := payments.NewGateway(ledger, payments.GatewayConfig{})
	ctx := context.Background()

	voided := flashsale.NewOrderID(flashsale.NewUserID(1))
	if out, err := g.Void(ctx, voided); err != nil || out != payments.Voided {
		t.Errorf("void of an uncharged order = %q, %v; want VOIDED", out, err)
	}
	if out, err := g.Charge(ctx, voided, 100); err != nil || out != payments.Voided {
		t.Errorf("charge after a void = %q, %v; want VOIDED", out, err)
	}
	charged := flashsale.NewOrderID(flashsale.NewUserID(1))
	if _, err := g.Charge(ctx, charged, 100); err != nil {
		t.Fatal(err)
	}
	if out, err := g.Void(ctx, charged); err != nil || out != payments.Approved {
		t.Errorf("void after a charge = %q, %v; want APPROVED", out, err)
	}
	if n, err := ledger.CountRefunds(ctx); err != nil || n != 0 {
		t.Errorf("refunds = %d, %v; want 0 (a void refunds nothing)", n, err)
	}
}

// shop is a payment worker over real shards, with a checkout that moves and settles orders
// in PostgreSQL (units and Redis are the checkout's own tests' business).
type shop struct {
	t       *testing.T
	db      *postgres.DB
	orders  *postgres.OrderStore
	ledger  *postgres.ChargeLedger
	refunds *prometheus.CounterVec
	buyer   flashsale.UserID
}

type storeCheckout struct{ orders *postgres.OrderStore }

func (c storeCheckout) Transition(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error) {
	return c.orders.TransitionOrder(ctx, id, from, to)
}

func (c storeCheckout) Settle(ctx context.Context, id flashsale.OrderID, refunded bool) (*flashsale.Order, bool, error) {
	return c.orders.SettleOrder(ctx, id, refunded)
}

func newShop(t *testing.T) *shop {
	t.Helper()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	u := &flashsale.User{Email: testenv.Name() + "@example.test", Name: "B", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := postgres.NewUserStore(db).CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return &shop{t: t, db: db, orders: postgres.NewOrderStore(db), ledger: postgres.NewChargeLedger(db),
		refunds: payments.NewRefundsCounter(nil), buyer: u.ID}
}

// worker returns a payment worker whose gateway answers after latency.
func (s *shop) worker(latency time.Duration) *payments.Worker {
	g := payments.NewGateway(s.ledger, payments.GatewayConfig{Latency: latency})
	return payments.NewWorker(g, s.orders, storeCheckout{s.orders}, s.refunds, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (s *shop) place(cents int) *flashsale.Order {
	s.t.Helper()
	o := &flashsale.Order{ID: flashsale.NewOrderID(s.buyer), UserID: s.buyer, ProductID: flashsale.NewProductID(1),
		SaleID: flashsale.NewSaleID(2), Quantity: 1, TotalCents: cents, IdempotencyKey: testenv.Name()}
	if err := s.orders.CreateOrder(context.Background(), o); err != nil {
		s.t.Fatal(err)
	}
	return o
}

// events claims the unsent events of every shard, as the relay would, and returns them.
func (s *shop) events() []flashsale.OrderEvent {
	s.t.Helper()
	var events []flashsale.OrderEvent
	for shard := range s.db.Shards() {
		_, err := postgres.NewOutbox(s.db).Relay(context.Background(), shard, flashsale.ToRabbitMQ, 1000,
			func(_ context.Context, rows []flashsale.OutboxEvent) error {
				for _, r := range rows {
					var e flashsale.OrderEvent
					if err := json.Unmarshal(r.Payload, &e); err != nil {
						return err
					}
					events = append(events, e)
				}
				return nil
			})
		if err != nil {
			s.t.Fatal(err)
		}
	}
	return events
}

// only returns the one event of the type, failing unless there is exactly one.
func only(t *testing.T, events []flashsale.OrderEvent, typ string) flashsale.OrderEvent {
	t.Helper()
	var found []flashsale.OrderEvent
	for _, e := range events {
		if e.Type == typ {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s events = %d, want 1 (all: %+v)", typ, len(found), events)
	}
	return found[0]
}

func (s *shop) refundsCounted(outcome string) int {
	s.t.Helper()
	var m dto.Metric
	if err := s.refunds.WithLabelValues(outcome).Write(&m); err != nil {
		s.t.Fatal(err)
	}
	return int(m.GetCounter().GetValue())
}

// Cancelling a paid order refunds it once, however often its event is delivered and however
// many workers handle the copies at once.
func TestCancelledPaidOrderIsRefundedOnce(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	w := s.worker(0)
	ctx := context.Background()
	o := s.place(1500)
	if err := w.Handle(ctx, only(t, s.events(), flashsale.EventOrderPlaced)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	events := s.events()
	only(t, events, flashsale.EventOrderPaid)
	cancelled := only(t, events, flashsale.EventOrderCancelled)

	var wg sync.WaitGroup
	for range 5 { // redeliveries, some concurrent
		wg.Go(func() {
			if err := w.Handle(ctx, cancelled); err != nil {
				t.Errorf("handle a cancel: %v", err)
			}
		})
	}
	wg.Wait()
	if err := w.Handle(ctx, cancelled); err != nil {
		t.Fatal(err)
	}

	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Errorf("refunds = %d, %v; want 1", n, err)
	}
	got, err := s.orders.FindOrderByID(ctx, o.ID)
	if err != nil || got.Status != flashsale.OrderCancelled || got.RefundedAt == nil {
		t.Errorf("order = %+v, %v; want CANCELLED with refundedAt", got, err)
	}
	settled := only(t, s.events(), flashsale.EventOrderSettled)
	if !settled.Refunded || settled.Status != flashsale.OrderCancelled {
		t.Errorf("settled event = %+v, want refunded and CANCELLED", settled)
	}
	if r, rep := s.refundsCounted(payments.RefundMade), s.refundsCounted(payments.RefundRepeated); r != 1 || rep != 5 {
		t.Errorf("refunds counted: refunded %d, repeated %d; want 1, 5", r, rep)
	}
}

// A charge that lands after its order expired is refunded at once by the worker that made
// it, and the expiry's own event refunds nothing more.
func TestChargeLandingAfterExpiryIsRefundedOnce(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	slow := s.worker(time.Second)
	ctx := context.Background()
	o := s.place(900)
	placed := only(t, s.events(), flashsale.EventOrderPlaced)

	charged := make(chan error, 1)
	go func() { charged <- slow.Handle(ctx, placed) }()
	time.Sleep(300 * time.Millisecond) // the charge is in flight: the order was read PENDING
	if _, err := s.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderExpired); err != nil {
		t.Fatal(err)
	}
	if err := <-charged; err != nil {
		t.Fatalf("handle the placed event: %v", err)
	}
	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Fatalf("refunds after the late charge = %d, %v; want 1", n, err)
	}
	events := s.events()
	if err := s.worker(0).Handle(ctx, only(t, events, flashsale.EventOrderExpired)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Errorf("refunds after the expiry's event = %d, %v; want 1", n, err)
	}
	got, err := s.orders.FindOrderByID(ctx, o.ID)
	if err != nil || got.Status != flashsale.OrderExpired || got.RefundedAt == nil {
		t.Errorf("order = %+v, %v; want EXPIRED with refundedAt", got, err)
	}
	if e := only(t, events, flashsale.EventOrderSettled); !e.Refunded || e.Status != flashsale.OrderExpired {
		t.Errorf("settled event = %+v, want refunded and EXPIRED", e)
	}
	if r, rep := s.refundsCounted(payments.RefundMade), s.refundsCounted(payments.RefundRepeated); r != 1 || rep != 1 {
		t.Errorf("refunds counted: refunded %d, repeated %d; want 1, 1", r, rep)
	}
}

// An expiry settled while a charge is still on its way voids the payment: the charge is
// refused, nothing is refunded because nothing was charged, and the buyer is told so.
func TestExpirySettledBeforeAChargeInFlightVoidsIt(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ctx := context.Background()
	o := s.place(900)
	placed := only(t, s.events(), flashsale.EventOrderPlaced)

	charged := make(chan error, 1)
	go func() { charged <- s.worker(1500*time.Millisecond).Handle(ctx, placed) }()
	time.Sleep(300 * time.Millisecond) // the charge is in flight, and the expiry settles first
	if _, err := s.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderExpired); err != nil {
		t.Fatal(err)
	}
	if err := s.worker(0).Handle(ctx, only(t, s.events(), flashsale.EventOrderExpired)); err != nil {
		t.Fatal(err)
	}
	if err := <-charged; err != nil {
		t.Fatalf("handle the placed event: %v", err)
	}
	if out, _, err := s.ledger.RecordCharge(ctx, o.ID, 900, payments.Approved); err != nil || out != payments.Voided {
		t.Errorf("the order's standing charge = %q, %v; want VOIDED", out, err)
	}
	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 0 {
		t.Errorf("refunds = %d, %v; want 0", n, err)
	}
	got, err := s.orders.FindOrderByID(ctx, o.ID)
	if err != nil || got.Status != flashsale.OrderExpired || got.RefundedAt != nil {
		t.Errorf("order = %+v, %v; want EXPIRED without refundedAt", got, err)
	}
	if e := only(t, s.events(), flashsale.EventOrderSettled); e.Refunded || e.Status != flashsale.OrderExpired {
		t.Errorf("settled event = %+v, want not refunded and EXPIRED", e)
	}
	if n := s.refundsCounted(payments.RefundNotCharged); n != 1 {
		t.Errorf("not_charged counted %d, want 1", n)
	}
}

// A gateway that times out on a refund it made leaves the message to be retried; the retry
// refunds nothing more and records the settlement.
func TestRefundRetriedAfterATimeoutRefundsOnce(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ctx := context.Background()
	o := s.place(700)
	if err := s.worker(0).Handle(ctx, only(t, s.events(), flashsale.EventOrderPlaced)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	cancelled := only(t, s.events(), flashsale.EventOrderCancelled)
	flaky := payments.NewWorker(payments.NewGateway(s.ledger, payments.GatewayConfig{TimeoutRate: 1}), s.orders,
		storeCheckout{s.orders}, s.refunds, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := flaky.Handle(ctx, cancelled); !errors.Is(err, payments.ErrTimeout) {
		t.Fatalf("handle with a gateway that times out: err = %v, want ErrTimeout", err)
	}
	for range 3 {
		if err := s.worker(0).Handle(ctx, cancelled); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Errorf("refunds = %d, %v; want 1", n, err)
	}
	if e := only(t, s.events(), flashsale.EventOrderSettled); !e.Refunded {
		t.Errorf("settled event = %+v, want refunded", e)
	}
	if r, f := s.refundsCounted(payments.RefundMade), s.refundsCounted(payments.RefundFailed); r != 1 || f != 1 {
		t.Errorf("refunds counted: refunded %d, failed %d; want 1, 1", r, f)
	}
}

// A paid order cancelled while its settlement was lost (dead-lettered after a long gateway
// outage) is refunded once the sweeper asks again.
func TestOverdueSettlementIsRefundedWhenAskedAgain(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	w := s.worker(0)
	ctx := context.Background()
	o := s.place(1100)
	if err := w.Handle(ctx, only(t, s.events(), flashsale.EventOrderPlaced)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	only(t, s.events(), flashsale.EventOrderCancelled) // and lost
	if n, err := s.orders.RequestSettlements(ctx, time.Now().Add(time.Second), 100); err != nil || n != 1 {
		t.Fatalf("requests = %d, %v; want 1", n, err)
	}
	if err := w.Handle(ctx, only(t, s.events(), flashsale.EventOrderSettlementDue)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ledger.CountRefunds(ctx); err != nil || n != 1 {
		t.Errorf("refunds = %d, %v; want 1", n, err)
	}
	if e := only(t, s.events(), flashsale.EventOrderSettled); !e.Refunded {
		t.Errorf("settled event = %+v, want refunded", e)
	}
	if n, err := s.orders.RequestSettlements(ctx, time.Now().Add(time.Hour), 100); err != nil || n != 0 {
		t.Errorf("requests once settled = %d, %v; want 0", n, err)
	}
}

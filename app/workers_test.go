package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
)

// stack is the shared connections of one test, with workers it can start and stop.
type stack struct {
	t       *testing.T
	cfg     app.Config
	d       *app.Deps
	brokers []string
	wg      sync.WaitGroup
}

func newStack(t *testing.T, configure func(*app.Config)) *stack {
	t.Helper()
	cfg := app.Config{
		DatabaseShards:   testenv.Shards(t, 2),
		DatabasePoolSize: testenv.PoolSize,
		RedisURL:         testenv.RedisURL(t),
		RabbitMQURL:      testenv.RabbitURL(t),
		Namespace:        testenv.Name(),
		ReservationTTL:   time.Hour,
		PaymentLatency:   time.Millisecond,
		RetryDelays:      []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
		MaxAttempts:      3,
	}
	if configure != nil {
		configure(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	d, err := app.OpenDeps(ctx, cfg, log, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	embedded, err := kafka.StartEmbedded(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(embedded.Close)
	if err := app.PrepareBrokers(ctx, cfg, embedded.Brokers()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rabbitmq.Delete(context.Background(), cfg.RabbitMQURL, cfg.Topology()) })
	s := &stack{t: t, cfg: cfg, d: d, brokers: embedded.Brokers()}
	t.Cleanup(s.wg.Wait) // runs before the closes above: cleanups are last in, first out
	return s
}

// start runs a worker until the returned stop is called (or the test ends).
func (s *stack) start(run func(context.Context, *app.Deps) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.wg.Go(func() {
		defer close(done)
		if err := run(ctx, s.d); err != nil {
			s.t.Errorf("worker: %v", err)
		}
	})
	stop = func() { cancel(); <-done }
	s.t.Cleanup(stop)
	return stop
}

func (s *stack) relays() func() {
	return s.start(func(ctx context.Context, d *app.Deps) error { app.RunRelays(ctx, d, s.brokers); return nil })
}

func payments(ctx context.Context, d *app.Deps) error {
	return app.RunPayments(ctx, d, app.PaymentsConfig{Concurrency: 4})
}

func (s *stack) analytics() func() {
	return s.start(func(ctx context.Context, d *app.Deps) error { return app.RunAnalytics(ctx, d, s.brokers) })
}

// sale creates a product and an active sale of it.
func (s *stack) sale(quantity int) *flashsale.FlashSale {
	s.t.Helper()
	ctx := context.Background()
	p := &flashsale.Product{Name: "Gadget", PriceCents: 2000, Stock: 1}
	if err := s.d.Checkout.CreateProduct(ctx, p); err != nil {
		s.t.Fatal(err)
	}
	sale := &flashsale.FlashSale{ProductID: p.ID, SalePriceCents: 700, Quantity: quantity, PerUserLimit: 1,
		StartsAt: time.Now().Add(-time.Minute), EndsAt: time.Now().Add(time.Hour)}
	if err := s.d.Checkout.CreateSale(ctx, sale); err != nil {
		s.t.Fatal(err)
	}
	return sale
}

// order registers a buyer and places one order of the sale for them.
func (s *stack) order(sale *flashsale.FlashSale) *flashsale.Order {
	s.t.Helper()
	ctx := context.Background()
	u := &flashsale.User{Email: testenv.Name() + "@example.test", Name: "B", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := s.d.Raw.Users.CreateUser(ctx, u); err != nil {
		s.t.Fatal(err)
	}
	o, err := s.d.Checkout.PlaceFlashSaleOrder(ctx, flashsale.Viewer{UserID: u.ID, Role: u.Role}, sale.ID, 1, "k")
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

func (s *stack) statuses(orders []*flashsale.Order, want flashsale.OrderStatus) error {
	for _, o := range orders {
		got, err := s.d.Raw.Orders.FindOrderByID(context.Background(), o.ID)
		if err != nil {
			return err
		}
		if got.Status != want {
			return fmt.Errorf("order %s is %s, want %s", o.ID, got.Status, want)
		}
	}
	return nil
}

func (s *stack) charges() int {
	s.t.Helper()
	n, err := postgres.NewChargeLedger(s.d.DB).CountCharges(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// Two replicas of every worker: each order is paid, charged once, notified once per event
// and counted once.
func TestOrdersArePaidNotifiedAndCountedOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	s.relays()
	for range 2 {
		s.start(payments)
		s.start(app.RunNotifications)
		s.analytics()
	}
	sale := s.sale(30)
	var orders []*flashsale.Order
	for range 30 {
		orders = append(orders, s.order(sale))
	}
	testenv.Eventually(t, 30*time.Second, func() error { return s.statuses(orders, flashsale.OrderPaid) })
	if got := s.charges(); got != len(orders) {
		t.Errorf("charges = %d, want %d", got, len(orders))
	}
	notes := postgres.NewNotificationStore(s.d.DB)
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, o := range orders {
			list, _, err := notes.ListNotifications(context.Background(), o.UserID, 10, 0)
			if err != nil {
				return err
			}
			if len(list) != 2 { // order.placed and order.paid
				return fmt.Errorf("buyer of %s has %d notifications, want 2", o.ID, len(list))
			}
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		st, err := s.d.Checkout.SaleStats(context.Background(), sale.ID)
		if err != nil {
			return err
		}
		if st.Orders != 30 || st.PaidOrders != 30 || st.UnitsSold != 30 || st.RevenueCents != 30*700 {
			return fmt.Errorf("stats = %+v, want 30 orders, 30 paid, 30 units, %d cents", st, 30*700)
		}
		return nil
	})
}

func TestDeclinedOrdersGiveTheirUnitsBack(t *testing.T) {
	t.Parallel()
	s := newStack(t, func(c *app.Config) { c.PaymentFailureRate = 1 })
	s.relays()
	s.start(payments)
	sale := s.sale(10)
	var orders []*flashsale.Order
	for range 10 {
		orders = append(orders, s.order(sale))
	}
	testenv.Eventually(t, 30*time.Second, func() error { return s.statuses(orders, flashsale.OrderCancelled) })
	// The units go back just after the move to CANCELLED commits, not with it.
	testenv.Eventually(t, 10*time.Second, func() error {
		remaining, err := s.d.Checkout.SaleRemaining(context.Background(), sale)
		if err != nil || remaining != 10 {
			return fmt.Errorf("remaining = %d, %v; want 10 (every unit back)", remaining, err)
		}
		return nil
	})
}

// A payment worker stopped while its handler is busy (context cancelled before the ack)
// leaves the message to another, and the order is charged once.
func TestWorkerStoppedMidMessageChargesOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(*app.Config)
		busy func(s *stack) error // true once the first worker is inside the message
	}{
		{"before the charge", func(c *app.Config) { c.PaymentLatency = time.Hour }, nil},
		{"after the charge, before the answer", func(c *app.Config) {
			c.PaymentTimeoutRate = 1
			// Slow retries, so the message is still waiting for its next attempt, not
			// dead-lettered, when the first worker stops.
			c.RetryDelays, c.MaxAttempts = []time.Duration{time.Second}, 10
		}, func(s *stack) error {
			if s.charges() != 1 {
				return fmt.Errorf("not charged yet")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tt.cfg)
			s.relays()
			stopFirst := s.start(payments)
			o := s.order(s.sale(1))
			if tt.busy != nil {
				testenv.Eventually(t, 30*time.Second, func() error { return tt.busy(s) })
			} else {
				time.Sleep(300 * time.Millisecond) // delivered and waiting on the gateway
			}
			stopFirst()
			// The replacement worker's gateway answers promptly.
			s.d.Config.PaymentLatency, s.d.Config.PaymentTimeoutRate = time.Millisecond, 0
			s.start(payments)
			testenv.Eventually(t, 30*time.Second, func() error { return s.statuses([]*flashsale.Order{o}, flashsale.OrderPaid) })
			if got := s.charges(); got != 1 {
				t.Errorf("charges = %d, want 1", got)
			}
		})
	}
}

// A message no worker can read ends in the dead-letter queue after the bounded attempts,
// and the worker goes on with the next.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	s.relays()
	s.start(payments)
	conn, err := amqp.Dial(s.cfg.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	err = ch.PublishWithContext(context.Background(), s.cfg.OrdersExchange(), flashsale.EventOrderPlaced, false, false,
		amqp.Publishing{MessageId: "poison", Body: []byte("{not json"), DeliveryMode: amqp.Persistent})
	if err != nil {
		t.Fatal(err)
	}
	o := s.order(s.sale(1))
	testenv.Eventually(t, 30*time.Second, func() error { return s.statuses([]*flashsale.Order{o}, flashsale.OrderPaid) })
	dead := rabbitmq.DeadQueueName(s.cfg.PaymentsQueue())
	testenv.Eventually(t, 30*time.Second, func() error {
		q, err := ch.QueueDeclarePassive(dead, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages != 1 {
			return fmt.Errorf("%s holds %d messages, want 1", dead, q.Messages)
		}
		return nil
	})
}

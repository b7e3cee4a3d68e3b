package payments

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
)

// Orders is what the worker reads and moves.
type Orders interface {
	FindOrderByID(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error)
}

// Checkout moves orders, giving units back when an order stops holding them, and records
// how an ended order's payment was settled.
type Checkout interface {
	Transition(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error)
	Settle(ctx context.Context, id flashsale.OrderID, refunded bool) (*flashsale.Order, bool, error)
}

// Outcomes of settling an ended order, as flashsale_refunds_total counts them.
const (
	RefundMade        = "refunded"    // settled now, by a refund of its charge
	RefundNotCharged  = "not_charged" // settled now: nothing had been charged, or the charge was declined
	RefundRepeated    = "repeated"    // settled before (a redelivery, the other path): nothing more done
	RefundFailed      = "failed"      // the gateway or the database failed; the message is retried
	refundsMetricName = "flashsale_refunds_total"
)

// NewRefundsCounter returns the counter of settlements by outcome, registered on reg if reg
// is not nil.
func NewRefundsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: refundsMetricName,
		Help: "Settlements of cancelled and expired orders by the payment worker, by outcome: refunded, not_charged, repeated (nothing more to do), failed.",
	}, []string{"outcome"})
	for _, o := range []string{RefundMade, RefundRepeated, RefundNotCharged, RefundFailed} {
		c.WithLabelValues(o) // every outcome on /metrics from the start
	}
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// Outcomes of charging a placed order, as flashsale_payments_total counts them.
const (
	PaymentApproved = "approved" // charged; the order is PAID
	PaymentDeclined = "declined" // refused by the gateway; the order is CANCELLED
	PaymentVoided   = "voided"   // the order ended before its charge: nothing charged
	PaymentFailed   = "failed"   // the gateway or the database failed; the message is retried
)

// tracerName names the spans of the payment worker.
const tracerName = "github.com/flashsale/flashsale/workers/payments"

// NewPaymentsCounter returns the counter of charges of placed orders by outcome, registered
// on reg if reg is not nil.
func NewPaymentsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_payments_total",
		Help: "Charges of placed orders by the payment worker, by outcome: approved, declined, voided (the order ended first), failed (retried).",
	}, []string{"outcome"})
	for _, o := range []string{PaymentApproved, PaymentDeclined, PaymentVoided, PaymentFailed} {
		c.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// paymentOutcome is the label of a gateway's outcome.
func paymentOutcome(gateway string) string {
	switch gateway {
	case Approved:
		return PaymentApproved
	case Declined:
		return PaymentDeclined
	case Voided:
		return PaymentVoided
	}
	return PaymentFailed
}

// Worker handles order events for payment.
type Worker struct {
	gateway  *Gateway
	orders   Orders
	checkout Checkout
	refunds  *prometheus.CounterVec
	payments *prometheus.CounterVec
	log      *slog.Logger
}

// NewWorker returns a worker. refunds (from NewRefundsCounter) may be nil.
func NewWorker(g *Gateway, orders Orders, c Checkout, refunds *prometheus.CounterVec, log *slog.Logger) *Worker {
	if refunds == nil {
		refunds = NewRefundsCounter(nil)
	}
	return &Worker{gateway: g, orders: orders, checkout: c, refunds: refunds, payments: NewPaymentsCounter(nil), log: log}
}

// CountPayments makes the worker count its charges on c (from NewPaymentsCounter).
func (w *Worker) CountPayments(c *prometheus.CounterVec) *Worker {
	w.payments = c
	return w
}

var pending = []flashsale.OrderStatus{flashsale.OrderPending}

// Handle charges the order of an order.placed event, and settles the order of an
// order.cancelled, order.expired or order.settlement_due event. It returns an error only for what a retry may fix
// (a gateway timeout, a database outage); the message is then retried with a growing delay
// and dead-lettered in the end, leaving a placed order to expire.
//
// Every step is idempotent by order, not by message, so a redelivered event, a crash between
// steps, or both paths to a refund running at once charge at most once and refund at most
// once: the gateway keeps one charge and one refund per order, and the order one settlement.
func (w *Worker) Handle(ctx context.Context, e flashsale.OrderEvent) error {
	switch e.Type {
	case flashsale.EventOrderPlaced:
		return w.charge(ctx, e)
	case flashsale.EventOrderCancelled, flashsale.EventOrderExpired, flashsale.EventOrderSettlementDue:
		return w.settle(ctx, e.OrderID, e.TotalCents)
	}
	return nil
}

// charge charges a placed order and moves it to PAID, or CANCELLED if declined. A charge that
// lands after the order was cancelled or expired is refunded at once.
func (w *Worker) charge(ctx context.Context, e flashsale.OrderEvent) (err error) {
	// A span of the trace the event came with, if any: without one the tracer is a no-op.
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, "charge order",
		trace.WithAttributes(attribute.String("flashsale.order_id", e.OrderID.String())))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	o, err := w.orders.FindOrderByID(ctx, e.OrderID)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		w.log.WarnContext(ctx, "order of a placed event does not exist", "order", e.OrderID.String())
		return nil
	} else if err != nil {
		return err
	}
	if o.Status != flashsale.OrderPending {
		// Paid by an earlier delivery, or cancelled or expired: nothing to charge, and the
		// settlement of an ended order follows from its own event.
		return nil
	}
	outcome, err := w.gateway.Charge(ctx, o.ID, o.TotalCents)
	if err != nil {
		w.payments.WithLabelValues(PaymentFailed).Inc()
		return err
	}
	w.payments.WithLabelValues(paymentOutcome(outcome)).Inc()
	span.SetAttributes(attribute.String("flashsale.payment_outcome", paymentOutcome(outcome)))
	if outcome == Voided {
		return nil // ended and settled before the charge: nothing was charged
	}
	to := flashsale.OrderPaid
	if outcome == Declined {
		to = flashsale.OrderCancelled
	}
	_, err = w.checkout.Transition(ctx, o.ID, pending, to)
	switch flashsale.ErrorCode(err) {
	case "":
		return nil
	case flashsale.ECONFLICT:
		if outcome != Approved {
			return nil
		}
		// Cancelled or expired while the charge was in flight: the buyer was charged for
		// nothing. The order's own event would settle it too; refunding here does not wait
		// for that event, and the two agree, each refunding at most once.
		w.log.InfoContext(ctx, "charged an order that is no longer pending; refunding it", "order", o.ID.String())
		return w.settle(ctx, o.ID, o.TotalCents)
	}
	return err
}

// settle closes the payment of a cancelled or expired order: it voids it at the gateway, so
// that a charge still in flight is refused, refunds the charge if one had landed, and records
// the outcome on the order, whose order.settled event tells the buyer.
func (w *Worker) settle(ctx context.Context, id flashsale.OrderID, amountCents int) (err error) {
	outcome := RefundNotCharged
	defer func() {
		if err != nil {
			outcome = RefundFailed
		}
		w.refunds.WithLabelValues(outcome).Inc()
	}()
	standing, err := w.gateway.Void(ctx, id)
	if err != nil {
		return err
	}
	refunded, made := standing == Approved, false
	if refunded {
		if made, err = w.gateway.Refund(ctx, id, amountCents); err != nil {
			return err
		}
	}
	_, settled, err := w.checkout.Settle(ctx, id, refunded)
	switch flashsale.ErrorCode(err) {
	case "":
		// Counted by the settlement, which happens once per order, so that a refund made by
		// an attempt that failed to record it still counts once.
		switch {
		case !settled:
			outcome = RefundRepeated
		case refunded:
			outcome = RefundMade
		}
		if made {
			w.log.InfoContext(ctx, "refunded an ended order", "order", id.String(), "cents", amountCents)
		}
		return nil
	case flashsale.ENOTFOUND, flashsale.ECONFLICT:
		// No such order, or one that holds stock (an event that was not an ending): a retry
		// would change nothing.
		w.log.WarnContext(ctx, "cannot record the settlement of an order", "order", id.String(), "err", err)
		return nil
	}
	return err
}

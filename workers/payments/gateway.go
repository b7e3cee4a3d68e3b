// Package payments charges new orders and refunds ended ones. It consumes order.placed
// events, charges each order once through a payment gateway, and moves the order to PAID, or
// to CANCELLED (giving its units back) when the card is declined. It consumes order.cancelled
// and order.expired events and settles each such order once: it voids the order's payment at
// the gateway, so that no charge can land later, refunds the charge if one had landed, and
// records the outcome on the order (see Worker.Handle).
package payments

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/flashsale/flashsale"
)

// Outcomes of a charge. Voided is the outcome of an order whose payment was voided before any
// charge: a charge asked for later is refused with it.
const (
	Approved = "APPROVED"
	Declined = "DECLINED"
	Voided   = "VOIDED"
)

// ErrTimeout is a gateway that did not answer in time. Like a real one, it may or may not
// have charged: the retry, with the same idempotency key, finds out without charging twice.
var ErrTimeout = errors.New("payment gateway timed out")

// Ledger is the gateway's memory of charges and refunds by idempotency key (the order id).
type Ledger interface {
	// RecordCharge stores an order's outcome unless one is stored, and returns the stored one.
	RecordCharge(ctx context.Context, order flashsale.OrderID, amountCents int, outcome string) (stored string, created bool, err error)
	// RecordRefund refunds an approved charge once; created=false if it was refunded before.
	// CONFLICT (no approved charge), BAD_USER_INPUT (more than was charged).
	RecordRefund(ctx context.Context, order flashsale.OrderID, amountCents int) (created bool, err error)
}

// GatewayConfig shapes the mock gateway's behaviour.
type GatewayConfig struct {
	Latency     time.Duration // how long a charge takes
	FailureRate float64       // fraction of orders declined (PAYMENT_FAILURE_RATE)
	TimeoutRate float64       // fraction of calls that time out
}

// Gateway is a mock payment gateway that behaves like a real one: idempotent by key (the
// order id), slow, sometimes declining and sometimes timing out. Like a real one it also
// voids an order's payment and refunds a charge, each idempotent by order as well.
type Gateway struct {
	ledger Ledger
	cfg    GatewayConfig
}

// NewGateway returns a gateway keeping its charges in ledger.
func NewGateway(ledger Ledger, cfg GatewayConfig) *Gateway { return &Gateway{ledger: ledger, cfg: cfg} }

// Charge charges an order's amount once. A key charged before returns its first outcome.
func (g *Gateway) Charge(ctx context.Context, order flashsale.OrderID, amountCents int) (string, error) {
	if err := g.wait(ctx); err != nil {
		return "", err
	}
	outcome, _, err := g.ledger.RecordCharge(ctx, order, amountCents, g.decide(order))
	if err != nil {
		return "", err
	}
	if g.lost() {
		return "", ErrTimeout // charged, but the answer is lost on the way back
	}
	return outcome, nil
}

// Void closes an order's payment: if nothing was charged, nothing ever will be (a later
// Charge answers Voided). It returns the order's standing outcome: Approved (charged: refund
// it), Declined, or Voided.
func (g *Gateway) Void(ctx context.Context, order flashsale.OrderID) (string, error) {
	if err := g.wait(ctx); err != nil {
		return "", err
	}
	outcome, _, err := g.ledger.RecordCharge(ctx, order, 0, Voided)
	if err != nil {
		return "", err
	}
	if g.lost() {
		return "", ErrTimeout
	}
	return outcome, nil
}

// Refund gives back amountCents of an order's approved charge, once: refunded=false means it
// was refunded before and nothing more was. CONFLICT (no approved charge), BAD_USER_INPUT
// (more than was charged).
func (g *Gateway) Refund(ctx context.Context, order flashsale.OrderID, amountCents int) (refunded bool, err error) {
	if err := g.wait(ctx); err != nil {
		return false, err
	}
	created, err := g.ledger.RecordRefund(ctx, order, amountCents)
	if err != nil {
		return false, err
	}
	if g.lost() {
		return false, ErrTimeout // refunded, but the answer is lost on the way back
	}
	return created, nil
}

// wait is the gateway's latency.
func (g *Gateway) wait(ctx context.Context) error {
	if g.cfg.Latency <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(g.cfg.Latency):
		return nil
	}
}

// lost reports whether this answer times out on its way back.
func (g *Gateway) lost() bool { return g.cfg.TimeoutRate > 0 && rand.Float64() < g.cfg.TimeoutRate }

// decide declines a stable fraction of orders: the same order is always decided the same way,
// as a card would be.
func (g *Gateway) decide(order flashsale.OrderID) string {
	if g.cfg.FailureRate <= 0 {
		return Approved
	}
	h := fnv.New64a()
	h.Write([]byte(order.String()))
	if float64(h.Sum64()%10_000)/10_000 < g.cfg.FailureRate {
		return Declined
	}
	return Approved
}

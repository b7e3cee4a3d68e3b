// Package payments charges new orders: it consumes order.placed events, charges each order
// once through a payment gateway, and moves the order to PAID, or to CANCELLED (giving its
// units back) when the card is declined.
package payments

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/flashsale/flashsale"
)

// Outcomes of a charge.
const (
	Approved = "APPROVED"
	Declined = "DECLINED"
)

// ErrTimeout is a gateway that did not answer in time. Like a real one, it may or may not
// have charged: the retry, with the same idempotency key, finds out without charging twice.
var ErrTimeout = errors.New("payment gateway timed out")

// Ledger is the gateway's memory of charges by idempotency key.
type Ledger interface {
	RecordCharge(ctx context.Context, order flashsale.OrderID, amountCents int, outcome string) (stored string, created bool, err error)
}

// GatewayConfig shapes the mock gateway's behaviour.
type GatewayConfig struct {
	Latency     time.Duration // how long a charge takes
	FailureRate float64       // fraction of orders declined (PAYMENT_FAILURE_RATE)
	TimeoutRate float64       // fraction of calls that time out
}

// Gateway is a mock payment gateway that behaves like a real one: idempotent by key (the
// order id), slow, sometimes declining and sometimes timing out.
type Gateway struct {
	ledger Ledger
	cfg    GatewayConfig
}

// NewGateway returns a gateway keeping its charges in ledger.
func NewGateway(ledger Ledger, cfg GatewayConfig) *Gateway { return &Gateway{ledger: ledger, cfg: cfg} }

// Charge charges an order's amount once. A key charged before returns its first outcome.
func (g *Gateway) Charge(ctx context.Context, order flashsale.OrderID, amountCents int) (string, error) {
	if g.cfg.Latency > 0 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(g.cfg.Latency):
		}
	}
	outcome, _, err := g.ledger.RecordCharge(ctx, order, amountCents, g.decide(order))
	if err != nil {
		return "", err
	}
	if g.cfg.TimeoutRate > 0 && rand.Float64() < g.cfg.TimeoutRate {
		return "", ErrTimeout // charged, but the answer is lost on the way back
	}
	return outcome, nil
}

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

package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/workers/payments"
)

func TestGatewayChargesEachOrderOnce(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ledger := postgres.NewChargeLedger(db)
	g := payments.NewGateway(ledger, payments.GatewayConfig{FailureRate: 0.5, TimeoutRate: 0.3})
	ctx := context.Background()

	orders := make([]flashsale.OrderID, 20)
	for i := range orders {
		orders[i] = flashsale.NewOrderID(flashsale.NewUserID(i * 37))
	}
	outcomes := make([][]string, len(orders))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, id := range orders {
		for range 10 { // ten replicas charging the same order at once
			wg.Go(func() {
				for {
					out, err := g.Charge(ctx, id, 500)
					if errors.Is(err, payments.ErrTimeout) {
						continue // what a worker's retry does
					} else if err != nil {
						t.Errorf("charge: %v", err)
						return
					}
					mu.Lock()
					outcomes[i] = append(outcomes[i], out)
					mu.Unlock()
					return
				}
			})
		}
	}
	wg.Wait()
	for i, outs := range outcomes {
		for _, o := range outs {
			if o != outs[0] {
				t.Errorf("order %d: outcomes %v disagree", i, outs)
				break
			}
		}
	}
	if n, err := ledger.CountCharges(ctx); err != nil || n != len(orders) {
		t.Errorf("charges = %d, %v; want %d (one per order)", n, err, len(orders))
	}
}

func TestGatewayFailureRate(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	ledger := postgres.NewChargeLedger(db)
	tests := []struct {
		rate float64
		want string
	}{{0, payments.Approved}, {1, payments.Declined}}
	for _, tt := range tests {
		g := payments.NewGateway(ledger, payments.GatewayConfig{FailureRate: tt.rate})
		for i := range 10 {
			id := flashsale.NewOrderID(flashsale.NewUserID(i))
			got, err := g.Charge(context.Background(), id, 100)
			if err != nil || got != tt.want {
				t.Errorf("rate %v, order %d: got %q, %v; want %q", tt.rate, i, got, err, tt.want)
			}
		}
	}
}

package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/stores/postgres"
)

// DrainResult is how fast placed orders are charged: orders placed while no payment worker
// runs, then one (and then two) app.RunPayments started and timed until every order is PAID.
type DrainResult struct {
	Orders int `json:"orders"`
	// OneWorkerPerS and TwoWorkersPerS are orders turned PAID per second.
	OneWorkerPerS  float64 `json:"one_worker_per_s"`
	TwoWorkersPerS float64 `json:"two_workers_per_s"`
	OneWorkerS     float64 `json:"one_worker_s"`
	TwoWorkersS    float64 `json:"two_workers_s"`
	// GatewayBoundPerS is what one worker could charge if nothing but the mock gateway's
	// latency held it back: its concurrency over the latency.
	GatewayBoundPerS float64 `json:"gateway_bound_per_s"`
}

// Bounds of the drain benchmark.
const (
	drainPlaceConcurrency = 32
	drainBuyers           = 250         // eight orders each a round, within a buyer's order budget
	relayTimeout          = time.Minute // for the outbox to reach RabbitMQ
	paidTimeout           = 2 * time.Minute
)

// runDrain stops the stack's payment worker, then for 1 and 2 workers places cfg.DrainOrders
// orders, waits until the relay has published them all, starts the workers and times them
// until every order is PAID. The stack's own worker runs again afterwards.
func runDrain(ctx context.Context, cfg Config, s *shop, st *Stack, progress io.Writer) (*DrainResult, error) {
	st.stopPayments()
	defer st.resumePayments()
	buyers, err := s.registerBuyers(ctx, "drain", drainBuyers, 8)
	if err != nil {
		return nil, err
	}
	r := &DrainResult{Orders: cfg.DrainOrders}
	if lat := st.Config.PaymentLatency; lat > 0 {
		r.GatewayBoundPerS = perSecond(app.DefaultPaymentsConcurrency, lat)
	}
	for _, workers := range []int{1, 2} {
		elapsed, err := drainOnce(ctx, cfg.DrainOrders, workers, s, st, buyers, progress)
		if err != nil {
			return r, err
		}
		if workers == 1 {
			r.OneWorkerS, r.OneWorkerPerS = seconds(elapsed), perSecond(cfg.DrainOrders, elapsed)
		} else {
			r.TwoWorkersS, r.TwoWorkersPerS = seconds(elapsed), perSecond(cfg.DrainOrders, elapsed)
		}
	}
	return r, nil
}

// drainOnce places n orders with no worker running, then times `workers` workers charging
// them.
func drainOnce(ctx context.Context, n, workers int, s *shop, st *Stack, buyers []string, progress io.Writer) (time.Duration, error) {
	product, err := s.createProduct(ctx, fmt.Sprintf("Drain product %d of %s", workers, s.runID), n)
	if err != nil {
		return 0, err
	}
	ids := make([]flashsale.OrderID, n)
	var mu sync.Mutex
	var firstErr error
	loadgen.ForEach(ctx, n, drainPlaceConcurrency, func(i int) {
		id, err := s.placeOrder(ctx, buyers[i%len(buyers)], product, "", fmt.Sprintf("drain-%s-%d-%d", s.runID, workers, i))
		if err == nil {
			ids[i], err = flashsale.ParseOrderID(id)
		}
		if err != nil {
			mu.Lock()
			firstErr = cmpErr(firstErr, fmt.Errorf("place drain order %d: %w", i, err))
			mu.Unlock()
		}
	})
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	outbox := postgres.NewOutbox(st.API.DB)
	var backlog int
	var backlogErr error
	if !poll(ctx, 50*time.Millisecond, relayTimeout, func() bool {
		backlog, backlogErr = outbox.Backlog(ctx, flashsale.ToRabbitMQ)
		return backlogErr == nil && backlog == 0
	}) {
		return 0, fmt.Errorf("outbox not relayed to RabbitMQ within %s: %d rows left (%v)", relayTimeout, backlog, backlogErr)
	}
	// The notifications of the orders just placed run on meanwhile; the workers are timed
	// once they are done, so that the figure is the payments' alone.
	waitQuiet(ctx, progress)
	fmt.Fprintf(progress, "drain: %d orders waiting in RabbitMQ; starting %d payment worker(s)\n", n, workers)

	orders := st.API.Raw.Orders
	start := time.Now()
	stop := st.startPayments(workers)
	defer stop()
	// Each round asks only for the orders not yet seen PAID, so polling costs less as the
	// workers progress.
	pending := ids
	var lastErr error
	ok := poll(ctx, 50*time.Millisecond, paidTimeout, func() bool {
		found, errs := orders.FindOrdersByIDs(ctx, pending)
		var still []flashsale.OrderID
		for i, o := range found {
			if errs[i] != nil {
				lastErr = errs[i]
			}
			if errs[i] != nil || o.Status != flashsale.OrderPaid {
				still = append(still, pending[i])
			}
		}
		pending = still
		return len(pending) == 0
	})
	elapsed := time.Since(start)
	if !ok {
		return elapsed, fmt.Errorf("%d worker(s): %d of %d orders PAID after %s (last error: %v)", workers, n-len(pending), n, paidTimeout, lastErr)
	}
	fmt.Fprintf(progress, "drain: %d worker(s) charged %d orders in %.3f s\n", workers, n, elapsed.Seconds())
	return elapsed, nil
}

package checkout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
	"github.com/flashsale/flashsale/internal/testenv"
)

// saleRun is what buyers saw of a flash sale driven by runSale.
type saleRun struct {
	accepted    atomic.Int64 // distinct orders accepted
	unavailable atomic.Int64 // UNAVAILABLE answers (each retried)

	mu        sync.Mutex
	successes []time.Time
	faultAt   time.Time // when the last fault's step finished
}

// stoppedFor returns how long after the last fault step the first order was accepted: how
// long selling stopped.
func (r *saleRun) stoppedFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.successes {
		if at.After(r.faultAt) {
			return at.Sub(r.faultAt)
		}
	}
	return -1
}

// runSale drives a flash sale of sale: every buyer tries once (one key each), starting at a
// random moment in the first second, so that the sale lasts while faults strike. A buyer
// answered UNAVAILABLE checks that it carries a retry-after and tries the same request again
// shortly; any answer but an order, SOLD_OUT or UNAVAILABLE fails the test, and so does an
// accepted order past the sale's quantity, at any moment. faults[n] runs, once, when the
// n-th order was accepted, while the other buyers carry on.
func (h *harness) runSale(sale *flashsale.FlashSale, buyers []flashsale.Viewer, faults map[int64]func()) *saleRun {
	h.t.Helper()
	t := h.t
	r := &saleRun{}
	var seen sync.Map // order ids accepted
	var wg sync.WaitGroup
	for i, v := range buyers {
		wg.Go(func() {
			time.Sleep(rand.N(time.Second))
			key := fmt.Sprint("buy-", i)
			deadline := time.Now().Add(15 * time.Second)
			for {
				o, err := h.svc.PlaceFlashSaleOrder(context.Background(), v, sale.ID, 1, key)
				switch code := flashsale.ErrorCode(err); code {
				case "":
					if _, dup := seen.LoadOrStore(o.ID, true); dup {
						return
					}
					n := r.accepted.Add(1)
					if n > int64(sale.Quantity) {
						t.Errorf("oversold: order %d accepted for a sale of %d", n, sale.Quantity)
					}
					r.mu.Lock()
					r.successes = append(r.successes, time.Now())
					r.mu.Unlock()
					if f := faults[n]; f != nil {
						// Run by this buyer, at once, while the others carry on.
						f()
						r.mu.Lock()
						r.faultAt = time.Now()
						r.mu.Unlock()
					}
					return
				case flashsale.ESOLDOUT:
					return
				case flashsale.EUNAVAILABLE:
					r.unavailable.Add(1)
					if flashsale.RetryAfterSeconds(err) < 1 {
						t.Errorf("buyer %d: UNAVAILABLE without a retry-after: %v", i, err)
					}
					if time.Now().After(deadline) {
						t.Errorf("buyer %d: still UNAVAILABLE after 15s: %v", i, err)
						return
					}
					time.Sleep(20 * time.Millisecond) // the test's buyers are impatient
				default:
					t.Errorf("buyer %d: %s: %v", i, code, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return r
}

// checkSale asserts what every faulted sale must end with: sold out exactly, and, after
// reconciliation, remaining + held = quantity in Redis and PostgreSQL alike.
func (h *harness) checkSale(sale *flashsale.FlashSale, r *saleRun, fault string) {
	h.t.Helper()
	if err := h.svc.Reconcile(context.Background()); err != nil {
		h.t.Fatalf("reconcile: %v", err)
	}
	if got, want := r.accepted.Load(), int64(sale.Quantity); got != want {
		h.t.Errorf("accepted %d orders; want the whole quantity, %d (demand exceeds stock)", got, want)
	}
	if units, _ := h.held(flashsale.SalePool(sale.ID)); units != sale.Quantity {
		h.t.Errorf("orders in PostgreSQL hold %d units; want %d", units, sale.Quantity)
	}
	h.assertConserved(sale)
	h.t.Logf("%s: selling stopped for %v after the fault; %d UNAVAILABLE answers (each retried)",
		fault, r.stoppedFor(), r.unavailable.Load())
}

// privateHarness is a harness on a redis-server of the test's own.
func privateHarness(t *testing.T) (*harness, *testenv.RedisServer, *goredis.Client) {
	srv := testenv.StartRedisServer(t)
	opts, _ := goredis.ParseURL(srv.URL)
	client := goredis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return newHarness(t, client, ""), srv, client
}

// The operator's FLUSHALL a third of the way into a sale of 150 units to 400 buyers.
func TestFlashSaleSurvivesFlushAll(t *testing.T) {
	t.Parallel()
	h, _, client := privateHarness(t)
	sale := h.sale(150, 1)
	r := h.runSale(sale, h.buyers(400), map[int64]func(){
		50: func() {
			if err := client.FlushAll(context.Background()).Err(); err != nil {
				t.Errorf("flushall: %v", err)
			}
		},
	})
	h.checkSale(sale, r, "FLUSHALL")
	if h.repaired(checkout.RepairLostPool) == 0 {
		t.Errorf("no lost_pool repair counted after FLUSHALL")
	}
}

// Redis restarted empty a third of the way in: down for a moment, or for longer than an
// order may take, then back with nothing. Buyers whose orders Redis could not answer are told
// UNAVAILABLE, with a retry-after, and nothing else.
func TestFlashSaleSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	for _, down := range []time.Duration{300 * time.Millisecond, testConfig.WriteTimeout + 500*time.Millisecond} {
		t.Run(down.String(), func(t *testing.T) {
			t.Parallel()
			h, srv, _ := privateHarness(t)
			sale := h.sale(150, 1)
			r := h.runSale(sale, h.buyers(400), map[int64]func(){
				50: func() {
					srv.Stop()
					time.Sleep(down)
					srv.Start()
				},
			})
			h.checkSale(sale, r, "restart after "+down.String()+" down")
			if h.repaired(checkout.RepairLostPool) == 0 {
				t.Errorf("no lost_pool repair counted after the restart")
			}
			if down > testConfig.WriteTimeout && r.unavailable.Load() == 0 {
				t.Errorf("no buyer was told UNAVAILABLE while Redis was down for %v", down)
			}
		})
	}
}

// The pool's keys copied after 50 of 150 units sold and put back after 100, as a failover to
// a lagging replica or a restart from an older snapshot would.
func TestFlashSaleSurvivesStaleRestore(t *testing.T) {
	t.Parallel()
	h, _, client := privateHarness(t)
	sale := h.sale(150, 1)
	pool := flashsale.SalePool(sale.ID)
	var snap map[string]string
	dumped := make(chan struct{})
	r := h.runSale(sale, h.buyers(400), map[int64]func(){
		50: func() {
			snap = dumpPool(t, client, pool)
			close(dumped)
		},
		100: func() {
			<-dumped
			restorePool(t, client, snap)
		},
	})
	h.checkSale(sale, r, "stale restore")
	if r.stoppedFor() < 0 {
		t.Errorf("the sale sold out before the copy was put back: nothing was tested")
	}
	if h.repaired(checkout.RepairStalePool) == 0 {
		t.Errorf("no stale_pool repair counted after the restore")
	}
}

// A stale copy that no buyer touches after it was put back is found by reconciliation: live
// orders whose holds it lacks.
func TestReconcileRebuildsAStaleCopy(t *testing.T) {
	t.Parallel()
	h, _, client := privateHarness(t)
	sale := h.sale(20, 1)
	pool := flashsale.SalePool(sale.ID)
	ctx := context.Background()
	var snap map[string]string
	for i, v := range h.buyers(10) {
		if i == 4 {
			snap = dumpPool(t, client, pool)
		}
		if _, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, "k"); err != nil {
			t.Fatal(err)
		}
	}
	restorePool(t, client, snap)
	if got, _ := h.inv.Remaining(ctx, pool); got != 16 {
		t.Fatalf("remaining after the restore = %d; want the copy's 16", got)
	}
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.inv.Remaining(ctx, pool); got != 10 {
		t.Errorf("remaining after reconciliation = %d; want 10", got)
	}
	if got := h.repaired(checkout.RepairStalePool); got != 1 {
		t.Errorf("stale_pool repairs = %d; want 1", got)
	}
	h.assertConserved(sale)
}

// poolKeys are the Redis keys of a pool under the empty prefix (see stores/redis).
func poolKeys(pool flashsale.PoolKey) []string {
	var keys []string
	for _, k := range []string{"meta", "stock", "holds", "bought", "idem", "attempts"} {
		keys = append(keys, "{"+string(pool)+"}:"+k)
	}
	return keys
}

// dumpPool copies a pool's keys in one transaction, so that the copy is one moment's.
func dumpPool(t *testing.T, client *goredis.Client, pool flashsale.PoolKey) map[string]string {
	t.Helper()
	ctx := context.Background()
	cmds, err := client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range poolKeys(pool) {
			p.Dump(ctx, k)
		}
		return nil
	})
	if err != nil && err != goredis.Nil {
		t.Fatalf("dump pool: %v", err)
	}
	snap := map[string]string{}
	for i, k := range poolKeys(pool) {
		snap[k] = cmds[i].(*goredis.StringCmd).Val() // "" for a key that did not exist
	}
	return snap
}

// restorePool puts a copy back in one transaction, as a failover would: keys the copy lacks
// are deleted.
func restorePool(t *testing.T, client *goredis.Client, snap map[string]string) {
	t.Helper()
	ctx := context.Background()
	_, err := client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for k, v := range snap {
			p.Del(ctx, k)
			if v != "" {
				p.Restore(ctx, k, 0, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("restore pool: %v", err)
	}
}

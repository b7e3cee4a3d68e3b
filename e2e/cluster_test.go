package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A flash sale on a Redis Cluster whose sale's slot moves to another master in the middle
// of the burst, its keys going over one by one while buyers buy: every buyer is answered
// with an order or SOLD_OUT, never INTERNAL, nor even UNAVAILABLE, since the reservation is
// retried for longer than the slot is split; the sale sells no unit more than it has, every
// order accepted is there to read, and its remaining count and its orders add up to its
// quantity.
func TestFlashSaleWhileItsSlotMoves(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.Redis.ClusterAddrs = cluster.Addrs }))
	const quantity, buyers = 120, 12
	saleID, _ := activeSale(t, s, "Kettle", quantity, quantity)
	id, err := flashsale.ParseSaleID(saleID)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := cluster.Client(t).ClusterKeySlot(context.Background(), "{"+string(flashsale.SalePool(id))+"}").Result()
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		orders   = map[string]string{} // order id -> buyer's token
		codes    = map[string]int{}
		placed   atomic.Int64
		underway = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
	)
	tokens := make([]string, buyers)
	for i := range tokens {
		tokens[i] = customer(t, s, fmt.Sprintf("%s-%d@example.test", testenv.Name(), i))
	}
	for _, token := range tokens {
		wg.Go(func() {
			key := testenv.Name()
			for {
				r := s.Do(t, token, placeInSale, placeVars(saleID, 1, key))
				code := ""
				if cs := r.Codes(); len(cs) > 0 {
					code = cs[0]
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
				switch code {
				case "":
					var data struct{ PlaceFlashSaleOrder struct{ ID string } }
					if err := json.Unmarshal(r.Data, &data); err != nil || data.PlaceFlashSaleOrder.ID == "" {
						t.Errorf("order accepted without an id: %s (%v)", r.Body, err)
						return
					}
					mu.Lock()
					orders[data.PlaceFlashSaleOrder.ID] = token
					mu.Unlock()
					if placed.Add(1) == quantity/4 {
						once.Do(func() { close(underway) })
					}
					key = testenv.Name() // the next order
					time.Sleep(5 * time.Millisecond)
				case flashsale.EUNAVAILABLE:
					time.Sleep(20 * time.Millisecond) // the same key again, as retryAfter asks
				case flashsale.ESOLDOUT:
					return
				default:
					t.Errorf("a buyer was answered %s: %s", code, r.Body)
					return
				}
			}
		})
	}
	select {
	case <-underway:
		from, to := cluster.MoveSlot(t, int(slot), 25*time.Millisecond)
		t.Logf("slot %d of sale %s moved from %s to %s with %d of %d units sold", slot, saleID, from, to, placed.Load(), quantity)
		if placed.Load() == quantity {
			t.Errorf("the sale sold out before its slot had moved; the test proves nothing")
		}
	case <-time.After(patience):
		t.Errorf("the sale never got under way")
	}
	wg.Wait()
	t.Logf("answers: %v", codes)

	if len(orders) > quantity {
		t.Errorf("%d orders accepted for %d units: oversold", len(orders), quantity)
	}
	for _, code := range []string{flashsale.EINTERNAL, flashsale.EUNAVAILABLE} {
		if codes[code] > 0 {
			t.Errorf("%d buyers answered %s while the slot moved", codes[code], code)
		}
	}
	for orderID, token := range orders {
		var data struct{ Order struct{ ID, Status string } }
		s.Do(t, token, `query($id: ID!) { order(id: $id) { id status } }`, map[string]any{"id": orderID}).MustData(t, &data)
		if data.Order.ID != orderID || data.Order.Status != "PENDING" {
			t.Errorf("accepted order %s reads as %+v; want it PENDING", orderID, data.Order)
		}
	}
	if left := saleRemaining(t, s, saleID); left+len(orders) != quantity {
		t.Errorf("remaining %d + %d orders = %d; want the quantity %d", left, len(orders), left+len(orders), quantity)
	}
}

// The API under test runs on the Redis Cluster exactly when TEST_REDIS_CLUSTER asks for one,
// so that the tests `make test-cluster` runs again do run on a cluster.
func TestAPIRunsOnTheClusterInClusterMode(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	_, onCluster := s.API.Redis.(*goredis.ClusterClient)
	if onCluster != testenv.ClusterMode() {
		t.Errorf("API on a Redis Cluster: %v; want %v (TEST_REDIS_CLUSTER=%q)", onCluster, testenv.ClusterMode(), os.Getenv(testenv.ClusterEnv))
	}
}

package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// Ids near 2^62, so that any script turning one into a Lua number (a double) would corrupt it.
func orderID(n int64) flashsale.OrderID { return flashsale.OrderID(1<<62 | n) }
func userID(n int64) flashsale.UserID   { return flashsale.UserID(1<<61 | n) }

// orders hands out order ids unique within a test.
type orders struct{ n atomic.Int64 }

func (o *orders) next() flashsale.OrderID { return orderID(o.n.Add(1)) }

// newInventory returns an Inventory on the shared Redis (or, with TEST_REDIS_CLUSTER set,
// the shared Redis Cluster), under a prefix of this test's own whose keys are deleted when
// the test ends.
func newInventory(t *testing.T) (*Inventory, goredis.UniversalClient, string) {
	t.Helper()
	c, prefix := testenv.RedisClient(t)
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	return NewInventory(c, prefix), c, prefix
}

// deletePrefix deletes the keys under prefix, on every master of a cluster.
func deletePrefix(t *testing.T, c goredis.UniversalClient, prefix string) {
	t.Helper()
	if cluster, ok := c.(*goredis.ClusterClient); ok {
		err := cluster.ForEachMaster(context.Background(), func(ctx context.Context, node *goredis.Client) error {
			deletePrefix(t, node, prefix)
			return nil
		})
		if err != nil {
			t.Errorf("delete test keys: %v", err)
		}
		return
	}
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan test keys: %v", err)
		return
	}
	// One UNLINK per key, pipelined: on a cluster node the keys lie in many slots, which one
	// multi-key command refuses.
	pipe := c.Pipeline()
	for _, k := range keys {
		pipe.Unlink(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && len(keys) > 0 {
		t.Errorf("delete test keys: %v", err)
	}
}

// otherClient returns a client of its own of the server (or cluster) testenv.RedisClient
// gives: a second process.
func otherClient(t *testing.T) goredis.UniversalClient {
	t.Helper()
	if testenv.ClusterMode() {
		return testenv.RedisCluster(t).Client(t)
	}
	return newClient(t, testenv.RedisURL(t))
}

// newClient returns a client of its own on url, closed when the test ends: a second process.
func newClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func mustLoad(t *testing.T, inv *Inventory, pool flashsale.PoolKey, terms flashsale.PoolTerms, holds ...flashsale.Hold) {
	t.Helper()
	wrote, err := inv.Load(context.Background(), pool, terms, holds, flashsale.PoolVersion{Generation: 1})
	if err != nil || !wrote {
		t.Fatalf("Load(%s) = %v, %v; want true, nil", pool, wrote, err)
	}
}

func mustReserve(t *testing.T, inv *Inventory, pool flashsale.PoolKey, h flashsale.Hold) flashsale.Reservation {
	t.Helper()
	res, err := inv.Reserve(context.Background(), pool, h)
	if err != nil {
		t.Fatalf("Reserve(%+v) = %v", h, err)
	}
	return res
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := flashsale.ErrorCode(err); got != code {
		t.Errorf("%s: error %v, code %q; want code %q", what, err, got, code)
	}
}

func wantNotLoaded(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, flashsale.ErrPoolNotLoaded) {
		t.Errorf("%s: error %v; want ErrPoolNotLoaded", what, err)
	}
}

// checkConserved checks remaining + Σ holds = quantity, and that the buyers' counts agree
// with the holds.
func checkConserved(t *testing.T, inv *Inventory, c goredis.UniversalClient, pool flashsale.PoolKey, quantity int) []flashsale.Hold {
	t.Helper()
	ctx := context.Background()
	left, err := inv.Remaining(ctx, pool)
	if err != nil {
		t.Fatalf("Remaining: %v", err)
	}
	holds, err := inv.Holds(ctx, pool)
	if err != nil {
		t.Fatalf("Holds: %v", err)
	}
	held := 0
	perUser := map[string]int{}
	for _, h := range holds {
		held += h.Quantity
		perUser[formatID(h.UserID)] += h.Quantity
	}
	if left+held != quantity {
		t.Errorf("remaining %d + held %d = %d; want quantity %d", left, held, left+held, quantity)
	}
	bought, err := c.HGetAll(ctx, inv.keys(pool).bought).Result()
	if err != nil {
		t.Fatalf("read bought: %v", err)
	}
	if len(bought) != len(perUser) {
		t.Errorf("bought has %d buyers; holds have %d", len(bought), len(perUser))
	}
	for user, n := range perUser {
		if got := bought[user]; got != formatInt(n) {
			t.Errorf("bought[%s] = %q; holds say %d", user, got, n)
		}
	}
	return holds
}

func formatInt(n int) string { return formatID(int64(n)) }

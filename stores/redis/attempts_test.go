package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// Attempts counted in memory join the pool's own count, the one Reserve keeps, and none is
// lost: not by concurrent adds during a flush, nor at close.
func TestAttemptTallyAddsToThePoolsCount(t *testing.T) {
	t.Parallel()
	inv, c, prefix := newInventory(t)
	ctx := context.Background()
	pool := flashsale.PoolKey("sale:tally")
	other := flashsale.PoolKey("sale:tally-other")
	for _, p := range []flashsale.PoolKey{pool, other} {
		if _, err := inv.Load(ctx, p, flashsale.PoolTerms{Quantity: 1}, nil, flashsale.PoolVersion{Generation: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var ids orders
	for i := range 3 { // one sale and two refusals, counted by the script
		if _, err := inv.Reserve(ctx, pool, flashsale.Hold{OrderID: ids.next(), UserID: userID(int64(i)), Quantity: 1, IdempotencyKey: fmt.Sprint(i)}); err != nil && err != flashsale.ErrSoldOut {
			t.Fatal(err)
		}
	}
	tally := NewAttemptTally(c, prefix, time.Hour, nil) // flushed by hand here
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				tally.Add(pool)
			}
		})
	}
	wg.Go(func() { // flushes while the adds go on
		for range 20 {
			if err := tally.Flush(ctx); err != nil {
				t.Errorf("flush: %v", err)
			}
		}
	})
	wg.Wait()
	tally.Add(other)
	if err := tally.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := inv.Attempts(ctx, pool); err != nil || n != 3+8000 {
		t.Errorf("attempts = %d, %v; want %d", n, err, 3+8000)
	}
	if n, err := inv.Attempts(ctx, other); err != nil || n != 1 {
		t.Errorf("attempts of the other pool = %d, %v; want 1", n, err)
	}
	tally.Add(pool)
	tally.Add(pool)
	tally.Close()
	if n, err := inv.Attempts(ctx, pool); err != nil || n != 3+8002 {
		t.Errorf("attempts after close = %d, %v; want %d (close flushes)", n, err, 3+8002)
	}
}

// A flush that fails keeps its counts for the next one.
func TestAttemptTallyKeepsWhatAFailedFlushTook(t *testing.T) {
	t.Parallel()
	inv, c, prefix := newInventory(t)
	ctx := context.Background()
	pool := flashsale.PoolKey("sale:tally-retry")
	if _, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: 1}, nil, flashsale.PoolVersion{Generation: 1}); err != nil {
		t.Fatal(err)
	}
	down := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), MaxRetries: -1})
	defer down.Close()
	tally := NewAttemptTally(down, prefix, time.Hour, nil)
	for range 7 {
		tally.Add(pool)
	}
	if err := tally.Flush(ctx); err == nil {
		t.Fatal("flush to a server that is down: err = nil")
	}
	tally.client = c // the server is back
	if err := tally.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := inv.Attempts(ctx, pool); err != nil || n != 7 {
		t.Errorf("attempts = %d, %v; want 7", n, err)
	}
	tally.Close()
}

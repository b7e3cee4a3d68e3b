package redis

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// waitFor bounds every wait for pub/sub delivery; it is a deadline against a hung test, not
// a measure of speed.
const waitFor = 10 * time.Second

// twoBuses returns a bus and a second bus on a client of its own, as another process would
// have, sharing a prefix of this test's own. Both are closed when the test ends.
func twoBuses(t *testing.T, opts StockBusOptions) (local, remote *StockBus) {
	t.Helper()
	c, prefix := testenv.RedisClient(t)
	other := otherClient(t)
	local = NewStockBus(c, prefix, opts)
	remote = NewStockBus(other, prefix, StockBusOptions{})
	t.Cleanup(local.Close)
	t.Cleanup(remote.Close)
	return local, remote
}

func mustSubscribe(t *testing.T, b *StockBus, ctx context.Context, pool flashsale.PoolKey) *Subscription {
	t.Helper()
	s, err := b.Subscribe(ctx, pool)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", pool, err)
	}
	return s
}

func mustPublish(t *testing.T, b *StockBus, pool flashsale.PoolKey, remaining int) {
	t.Helper()
	if err := b.PublishStock(context.Background(), pool, remaining); err != nil {
		t.Fatalf("PublishStock(%s, %d): %v", pool, remaining, err)
	}
}

// next returns s's next update, failing the test if none comes or the feed ends.
func next(t *testing.T, s *Subscription) *flashsale.StockUpdate {
	t.Helper()
	select {
	case u, ok := <-s.Updates():
		if !ok {
			t.Fatal("subscription ended; want an update")
		}
		return u
	case <-time.After(waitFor):
		t.Fatalf("no update within %v", waitFor)
	}
	return nil
}

// waitEnded waits for s's channel to be closed, discarding updates.
func waitEnded(t *testing.T, s *Subscription) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-s.Updates():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("subscription still open after %v", waitFor)
		}
	}
}

// settle waits until b has handed out every event it has started to deliver for pool: a
// delivery holds the topic's lock from the first subscriber to the last.
func settle(b *StockBus, pool flashsale.PoolKey) {
	b.mu.Lock()
	t := b.topics[pool]
	b.mu.Unlock()
	if t != nil {
		t.mu.Lock()
		t.mu.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
}

func TestStockBusFanOut(t *testing.T) {
	t.Parallel()
	local, remote := twoBuses(t, StockBusOptions{})
	ctx := context.Background()
	watched, other := flashsale.SalePool(1), flashsale.SalePool(2)

	subs := make([]*Subscription, 200)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Go(func() { subs[i] = mustSubscribe(t, local, ctx, watched) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := local.Subscriptions(); got != 1 {
		t.Errorf("Subscriptions() = %d with 200 subscribers of one pool; want 1", got)
	}
	elsewhere := mustSubscribe(t, local, ctx, other)
	if got := local.Subscriptions(); got != 2 {
		t.Errorf("Subscriptions() = %d with two pools watched; want 2", got)
	}

	before := time.Now()
	mustPublish(t, remote, watched, 7)
	for i, s := range subs {
		u := next(t, s)
		if u.Remaining != 7 || u.At.Before(before.Add(-time.Second)) {
			t.Errorf("subscriber %d got %+v; want remaining 7 at about %v", i, u, before)
		}
	}
	mustPublish(t, remote, other, 3)
	if u := next(t, elsewhere); u.Remaining != 3 {
		t.Errorf("subscriber of the other pool got %+v; want remaining 3", u)
	}
	for i, s := range subs {
		select {
		case u := <-s.Updates():
			t.Errorf("subscriber %d of %s got %+v, published to %s", i, watched, u, other)
		default:
		}
	}

	for _, s := range subs {
		s.Close()
		s.Close() // twice is harmless
	}
	if got := local.Subscriptions(); got != 1 {
		t.Errorf("Subscriptions() = %d after one pool's subscribers left; want 1", got)
	}
	elsewhere.Close()
	if got := local.Subscriptions(); got != 0 {
		t.Errorf("Subscriptions() = %d after every subscriber left; want 0", got)
	}
	for _, s := range subs {
		waitEnded(t, s)
	}
}

func TestStockBusSlowSubscriberKeepsOnlyTheNewest(t *testing.T) {
	t.Parallel()
	local, remote := twoBuses(t, StockBusOptions{})
	ctx := context.Background()
	slow := mustSubscribe(t, local, ctx, pool)
	fast := mustSubscribe(t, local, ctx, pool)

	// One publisher's messages arrive in order, so the fast reader sees every count while
	// the slow one reads nothing.
	for n := 100; n >= 1; n-- {
		mustPublish(t, remote, pool, n)
		if u := next(t, fast); u.Remaining != n {
			t.Fatalf("fast subscriber got %d; want %d", u.Remaining, n)
		}
	}
	settle(local, pool)
	if u := next(t, slow); u.Remaining != 1 {
		t.Errorf("slow subscriber read %d first; want only the newest, 1", u.Remaining)
	}
	select {
	case u := <-slow.Updates():
		t.Errorf("slow subscriber has %+v left over; want nothing older", u)
	default:
	}
}

func TestStockBusEndsWithContext(t *testing.T) {
	t.Parallel()
	local, remote := twoBuses(t, StockBusOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	s := mustSubscribe(t, local, ctx, pool)
	cancel()
	waitEnded(t, s)
	if got := local.Subscriptions(); got != 0 {
		t.Errorf("Subscriptions() = %d after the context ended; want 0", got)
	}

	// A pool watched again gets a new Redis subscription that works.
	s = mustSubscribe(t, local, context.Background(), pool)
	defer s.Close()
	mustPublish(t, remote, pool, 5)
	if u := next(t, s); u.Remaining != 5 {
		t.Errorf("resubscribed subscriber got %+v; want remaining 5", u)
	}

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := local.Subscribe(done, flashsale.SalePool(9)); err == nil {
		t.Error("Subscribe with a cancelled context succeeded")
	}
}

func TestStockBusTellsOfRestocks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var restocked []flashsale.PoolKey
	onRestock := func(p flashsale.PoolKey) { mu.Lock(); restocked = append(restocked, p); mu.Unlock() }
	local, remote := twoBuses(t, StockBusOptions{OnRestock: onRestock})
	s := mustSubscribe(t, local, context.Background(), pool)
	told := func() []flashsale.PoolKey { mu.Lock(); defer mu.Unlock(); return slices.Clone(restocked) }

	mustPublish(t, remote, pool, 0)
	next(t, s) // OnRestock is called, or not, before subscribers hear of the event
	if got := told(); len(got) != 0 {
		t.Errorf("an event with 0 remaining: OnRestock(%v), want no call", got)
	}
	mustPublish(t, remote, pool, 2)
	next(t, s)
	if got := told(); !slices.Equal(got, []flashsale.PoolKey{pool}) {
		t.Errorf("an event with 2 remaining: OnRestock(%v), want one call for %s", got, pool)
	}
}

func TestStockBusIgnoresMalformedEvents(t *testing.T) {
	t.Parallel()
	local, remote := twoBuses(t, StockBusOptions{})
	s := mustSubscribe(t, local, context.Background(), pool)
	if err := remote.client.Publish(context.Background(), remote.channel(pool), "not json").Err(); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, remote, pool, 4)
	if u := next(t, s); u.Remaining != 4 {
		t.Errorf("got %+v; want the well-formed event, remaining 4", u)
	}
}

func TestStockBusClose(t *testing.T) {
	t.Parallel()
	local, _ := twoBuses(t, StockBusOptions{})
	s1 := mustSubscribe(t, local, context.Background(), flashsale.SalePool(1))
	s2 := mustSubscribe(t, local, context.Background(), flashsale.SalePool(2))
	local.Close()
	waitEnded(t, s1)
	waitEnded(t, s2)
	s1.Close() // after the bus: harmless
	if got := local.Subscriptions(); got != 0 {
		t.Errorf("Subscriptions() = %d after Close; want 0", got)
	}
	if _, err := local.Subscribe(context.Background(), pool); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
	local.Close() // twice is harmless
}

func TestStockBusChurn(t *testing.T) {
	t.Parallel()
	local, remote := twoBuses(t, StockBusOptions{})
	pools := []flashsale.PoolKey{flashsale.SalePool(1), flashsale.SalePool(2), flashsale.SalePool(3)}
	stop := make(chan struct{})
	var publisher sync.WaitGroup
	publisher.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			remote.PublishStock(context.Background(), pools[n%len(pools)], n)
		}
	})

	// Subscribers come and go on a few pools at once, some leaving before Redis has even
	// confirmed the subscription they started.
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Go(func() {
			for i := range 25 {
				ctx, cancel := context.WithCancel(context.Background())
				if i%3 == 0 {
					go cancel()
				}
				s, err := local.Subscribe(ctx, pools[(w+i)%len(pools)])
				if err == nil {
					if i%2 == 0 {
						s.Close()
					}
				} else if ctx.Err() == nil {
					t.Errorf("Subscribe: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	publisher.Wait()

	// Every subscriber has left or is leaving (a context's AfterFunc runs on its own).
	deadline := time.Now().Add(waitFor)
	for local.Subscriptions() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := local.Subscriptions(); got != 0 {
		t.Fatalf("Subscriptions() = %d after every subscriber left; want 0", got)
	}
	s := mustSubscribe(t, local, context.Background(), pools[0])
	defer s.Close()
	mustPublish(t, remote, pools[0], -1)
	for u := next(t, s); u.Remaining != -1; u = next(t, s) {
	}
}

// TestStockBusLeavesNoGoroutines does not run in parallel, so that the goroutines it finds
// at the end are its own: t.Parallel tests wait until every sequential test has finished.
func TestStockBusLeavesNoGoroutines(t *testing.T) {
	// The goroutines already running are taken now, not when the check runs. The check is
	// registered first so that it runs last, after the clients' cleanups have closed them.
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	c, prefix := testenv.RedisClient(t)
	other := otherClient(t)
	local := NewStockBus(c, prefix, StockBusOptions{OnRestock: func(flashsale.PoolKey) {}})
	remote := NewStockBus(other, prefix, StockBusOptions{})
	defer local.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var subs []*Subscription
	for i := range 30 {
		subCtx := context.Background()
		if i%2 == 0 {
			subCtx = ctx // half of them end with their context, half with Close
		}
		subs = append(subs, mustSubscribe(t, local, subCtx, flashsale.SalePool(flashsale.SaleID(i%3))))
	}
	mustPublish(t, remote, flashsale.SalePool(0), 1)
	next(t, subs[0])
	cancel()
	for i, s := range subs {
		if i%2 == 1 {
			s.Close()
		}
		waitEnded(t, s)
	}
	// A bus closed with subscribers still open ends them and its goroutines too.
	mustSubscribe(t, local, context.Background(), pool)
	local.Close()
	remote.Close()
	if got := local.Subscriptions(); got != 0 {
		t.Errorf("Subscriptions() = %d; want 0", got)
	}
}

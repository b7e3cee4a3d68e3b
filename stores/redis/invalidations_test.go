package redis

import (
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// localPair returns two product caches on one Redis and prefix, each with its own
// invalidation bus: two API processes, the first keeping local copies unless noLocal.
func localPair(t *testing.T, client goredis.UniversalClient, prefix string, noLocal bool) (a, b *cache[flashsale.ProductID, flashsale.Product]) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	mk := func(noLocal bool) *cache[flashsale.ProductID, flashsale.Product] {
		bus := NewInvalidations(client, prefix, log)
		t.Cleanup(bus.Close)
		c := newCache[flashsale.ProductID, flashsale.Product](client, "prd", "product", CacheConfig{Prefix: prefix, Invalidations: bus, NoLocalCache: noLocal}, log)
		c.keepLocal()
		testenv.Eventually(t, 5*time.Second, func() error {
			if !bus.live.Load() {
				return errNotYet
			}
			return nil
		})
		return c
	}
	return mk(noLocal), mk(false)
}

var errNotYet = flashsale.Errorf(flashsale.EINTERNAL, "not yet")

func TestLocalCopiesServeWithoutRedisAndDropOnAnyProcessWrite(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, client, "{"+prefix) })
	a, b := localPair(t, client, prefix, false)
	s := &store{name: "lamp"}
	ids := []flashsale.ProductID{7}
	for _, c := range []*cache[flashsale.ProductID, flashsale.Product]{a, b} {
		c.load(t.Context(), ids, s.find)
	}
	// Both hold a local copy: even with the Redis entry gone they answer from memory.
	client.Del(t.Context(), a.key(7))
	for name, c := range map[string]*cache[flashsale.ProductID, flashsale.Product]{"a": a, "b": b} {
		if v, ok := c.peek(7); !ok || v.Name != "lamp" {
			t.Fatalf("%s: peek = %+v, %v; want its local copy", name, v, ok)
		}
	}
	// A writes: its own copy goes at once, B's within a pub/sub hop, and both read anew.
	s.name = "lantern"
	a.invalidate(t.Context(), 7)
	if _, ok := a.peek(7); ok {
		t.Fatal("the writing process still holds its local copy")
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, ok := b.peek(7); ok {
			return errNotYet
		}
		return nil
	})
	for name, c := range map[string]*cache[flashsale.ProductID, flashsale.Product]{"a": a, "b": b} {
		if vs, _ := c.load(t.Context(), ids, s.find); vs[0].Name != "lantern" {
			t.Errorf("%s after the write reads %q, want lantern", name, vs[0].Name)
		}
	}
}

func TestLocalCopyIsNotFilledFromAReadThatAnInvalidationOvertook(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, client, "{"+prefix) })
	a, b := localPair(t, client, prefix, false)
	gen := b.local.Generation()
	a.invalidate(t.Context(), 9) // lands while b's read (below) is "in flight"
	testenv.Eventually(t, 5*time.Second, func() error {
		if b.local.Generation() == gen {
			return errNotYet
		}
		return nil
	})
	b.local.Put(9, &flashsale.Product{ID: 9, Name: "old"}, gen)
	if v, ok := b.peek(9); ok {
		t.Errorf("local copy %+v filled from a read older than an invalidation", v)
	}
}

func TestLocalCopiesAreDroppedWhenTheSubscriptionIsLost(t *testing.T) {
	t.Parallel()
	url, stop := testenv.PrivateRedis(t)
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	a, _ := localPair(t, client, "local:", false)
	s := &store{name: "lamp"}
	a.load(t.Context(), []flashsale.ProductID{3}, s.find)
	if _, ok := a.peek(3); !ok {
		t.Fatal("no local copy after a read")
	}
	stop() // Redis goes away: invalidations could be missed from now on
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := a.peek(3); ok {
			return errNotYet
		}
		return nil
	})
}

// With NoLocalCache a process reads through Redis every time, and its writes still drop the
// copies of the processes that keep them.
func TestNoLocalCacheReadsRedisAndStillTellsOtherProcesses(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, client, "{"+prefix) })
	a, b := localPair(t, client, prefix, true)
	s := &store{name: "lamp"}
	ids := []flashsale.ProductID{5}
	for _, c := range []*cache[flashsale.ProductID, flashsale.Product]{a, b} {
		if vs, _ := c.load(t.Context(), ids, s.find); vs[0] == nil || vs[0].Name != "lamp" {
			t.Fatalf("load = %+v, want lamp", vs[0])
		}
	}
	if v, ok := a.peek(5); ok {
		t.Errorf("the process without local copies holds %+v", v)
	}
	if _, ok := b.peek(5); !ok {
		t.Fatal("the other process holds no local copy after a read")
	}
	s.name = "lantern"
	a.invalidate(t.Context(), 5)
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, ok := b.peek(5); ok {
			return errNotYet
		}
		return nil
	})
	if vs, _ := a.load(t.Context(), ids, s.find); vs[0].Name != "lantern" {
		t.Errorf("after its own write, the process without local copies reads %q, want lantern", vs[0].Name)
	}
}

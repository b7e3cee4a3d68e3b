package redis

import (
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// nearPair returns two product caches on one Redis and prefix, each with its own
// invalidation bus: two API processes.
func nearPair(t *testing.T, client goredis.UniversalClient, prefix string) (a, b *cache[flashsale.ProductID, flashsale.Product]) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	mk := func() *cache[flashsale.ProductID, flashsale.Product] {
		bus := NewInvalidations(client, prefix, log)
		t.Cleanup(bus.Close)
		c := newCache[flashsale.ProductID, flashsale.Product](client, "prd", "product", CacheConfig{Prefix: prefix, Invalidations: bus}, log)
		c.keepNear()
		testenv.Eventually(t, 5*time.Second, func() error {
			if !bus.live.Load() {
				return errNotYet
			}
			return nil
		})
		return c
	}
	return mk(), mk()
}

var errNotYet = flashsale.Errorf(flashsale.EINTERNAL, "not yet")

func TestNearCopiesServeWithoutRedisAndDropOnAnyProcessWrite(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, client, "{"+prefix) })
	a, b := nearPair(t, client, prefix)
	s := &store{name: "lamp"}
	ids := []flashsale.ProductID{7}
	for _, c := range []*cache[flashsale.ProductID, flashsale.Product]{a, b} {
		c.load(t.Context(), ids, s.find)
	}
	// Both hold a near copy: even with the Redis entry gone they answer from memory.
	client.Del(t.Context(), a.key(7))
	for name, c := range map[string]*cache[flashsale.ProductID, flashsale.Product]{"a": a, "b": b} {
		if v, ok := c.peek(7); !ok || v.Name != "lamp" {
			t.Fatalf("%s: peek = %+v, %v; want its near copy", name, v, ok)
		}
	}
	// A writes: its own copy goes at once, B's within a pub/sub hop, and both read anew.
	s.name = "lantern"
	a.invalidate(t.Context(), 7)
	if _, ok := a.peek(7); ok {
		t.Fatal("the writing process still holds its near copy")
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

func TestNearCopyIsNotFilledFromAReadThatAnInvalidationOvertook(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, client, "{"+prefix) })
	a, b := nearPair(t, client, prefix)
	gen := b.near.generation()
	a.invalidate(t.Context(), 9) // lands while b's read (below) is "in flight"
	testenv.Eventually(t, 5*time.Second, func() error {
		if b.near.generation() == gen {
			return errNotYet
		}
		return nil
	})
	b.near.put(9, &flashsale.Product{ID: 9, Name: "old"}, gen)
	if v, ok := b.peek(9); ok {
		t.Errorf("near copy %+v filled from a read older than an invalidation", v)
	}
}

func TestNearCopiesAreDroppedWhenTheSubscriptionIsLost(t *testing.T) {
	t.Parallel()
	url, stop := testenv.PrivateRedis(t)
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	a, _ := nearPair(t, client, "near:")
	s := &store{name: "lamp"}
	a.load(t.Context(), []flashsale.ProductID{3}, s.find)
	if _, ok := a.peek(3); !ok {
		t.Fatal("no near copy after a read")
	}
	stop() // Redis goes away: invalidations could be missed from now on
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := a.peek(3); ok {
			return errNotYet
		}
		return nil
	})
}

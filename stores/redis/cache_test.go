package redis

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// newTestCache returns a product cache on the shared Redis under a prefix of this test's
// own, whose keys are deleted when the test ends.
func newTestCache(t *testing.T) *cache[flashsale.ProductID, flashsale.Product] {
	t.Helper()
	c, prefix := testenv.RedisClient(t)
	t.Cleanup(func() { deletePrefix(t, c, "{"+prefix) })
	return newCache[flashsale.ProductID, flashsale.Product](c, "prd", "product", CacheConfig{Prefix: prefix}, slog.New(slog.DiscardHandler))
}

// store is a product store answering every id with the product named name, counting calls.
type store struct {
	name  string
	calls atomic.Int64
}

func (s *store) find(_ context.Context, ids []flashsale.ProductID) ([]*flashsale.Product, []error) {
	s.calls.Add(1)
	vs := make([]*flashsale.Product, len(ids))
	for i, id := range ids {
		vs[i] = &flashsale.Product{ID: id, Name: s.name}
	}
	return vs, make([]error, len(ids))
}

func names(vs []*flashsale.Product) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = v.Name
		}
	}
	return out
}

func TestCacheFillsOnMissAndServesHits(t *testing.T) {
	t.Parallel()
	for _, ids := range [][]flashsale.ProductID{{1}, {1, 2, 3}} {
		c := newTestCache(t)
		s := &store{name: "lamp"}
		for range 3 {
			vs, errs := c.load(t.Context(), ids, s.find)
			for i := range ids {
				if errs[i] != nil || vs[i] == nil || vs[i].Name != "lamp" {
					t.Fatalf("load(%v)[%d] = %+v, %v; want the lamp", ids, i, vs[i], errs[i])
				}
			}
		}
		if got, want := s.calls.Load(), int64(1); got != want {
			t.Errorf("load(%v) three times: %d store calls; want %d", ids, got, want)
		}
	}
}

// A read that missed and read the store before a write committed must not put its value in
// the cache after the write's invalidation: with plain cache-aside it would, and the stale
// value would live for the whole TTL.
func TestCacheKeepsOutAValueReadBeforeAnInvalidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ids  []flashsale.ProductID // one id takes the single-flight path, several the batch path
	}{
		{"one id", []flashsale.ProductID{7}},
		{"a batch", []flashsale.ProductID{7, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCache(t)
			ctx := t.Context()
			entered, release := make(chan struct{}), make(chan struct{})
			stale := func(ctx context.Context, ids []flashsale.ProductID) ([]*flashsale.Product, []error) {
				close(entered)
				<-release // the write commits and invalidates while this read is in flight
				return (&store{name: "old"}).find(ctx, ids)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.load(ctx, tt.ids, stale)
			}()
			<-entered
			c.invalidate(ctx, tt.ids...)
			close(release)
			<-done

			fresh := &store{name: "new"}
			vs, _ := c.load(ctx, tt.ids, fresh.find)
			for i, name := range names(vs) {
				if name != "new" {
					t.Errorf("after the invalidation, load(%v)[%d] = %q; want %q", tt.ids, i, name, "new")
				}
			}
			if fresh.calls.Load() != 1 {
				t.Errorf("after the invalidation: %d store calls; want 1", fresh.calls.Load())
			}
			// The fresh read filled the entries: the next load is all hits.
			vs, _ = c.load(ctx, tt.ids, fresh.find)
			if got := fresh.calls.Load(); got != 1 {
				t.Errorf("second load after the invalidation: %d store calls in all; want 1 (%v)", got, names(vs))
			}
		})
	}
}

// A reader that finds another reader's lease goes to the store and does not take the lease
// for a value.
func TestCacheTreatsALeaseAsAMiss(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	ctx := t.Context()
	leases := c.lease(ctx, []flashsale.ProductID{9})
	if leases[0] == "" {
		t.Fatalf("lease of a missing entry: none; want one")
	}
	if again := c.lease(ctx, []flashsale.ProductID{9}); again[0] != "" {
		t.Errorf("second lease of a leased entry = %q; want none", again[0])
	}
	s := &store{name: "chair"}
	for _, ids := range [][]flashsale.ProductID{{9}, {9, 10}} {
		vs, errs := c.load(ctx, ids, s.find)
		if errs[0] != nil || vs[0] == nil || vs[0].Name != "chair" {
			t.Errorf("load(%v) of a leased entry = %+v, %v; want the chair from the store", ids, vs[0], errs[0])
		}
	}
	// The first reader, still holding its lease, fills the entry.
	c.fill(ctx, []flashsale.ProductID{9}, leases, []*flashsale.Product{{ID: 9, Name: "chair"}}, []error{nil})
	before := s.calls.Load()
	if vs, _ := c.load(ctx, []flashsale.ProductID{9}, s.find); vs[0] == nil || vs[0].Name != "chair" || s.calls.Load() != before {
		t.Errorf("load after the lease holder filled: %+v with %d more store calls; want a hit", vs[0], s.calls.Load()-before)
	}
}

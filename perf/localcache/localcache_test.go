package localcache

import (
	"sync/atomic"
	"testing"
)

// bus is an Invalidator driven by the test. The real one (stores/redis.Invalidations, over
// Redis pub/sub) is exercised by stores/redis's tests; these pin down the cache's own rules.
type bus struct {
	gen  atomic.Uint64
	live atomic.Bool
}

func (b *bus) Generation() uint64 { return b.gen.Load() }
func (b *bus) Live() bool         { return b.live.Load() }

func newBus() *bus { b := &bus{}; b.live.Store(true); return b }

type product struct{ Name string }

func TestGetReturnsACopyOfWhatWasPut(t *testing.T) {
	t.Parallel()
	c := New[int64, product](newBus())
	p := &product{Name: "lamp"}
	c.Put(7, p, c.Generation())
	p.Name = "changed by the caller"
	got, ok := c.Get(7)
	if !ok || got.Name != "lamp" {
		t.Fatalf("Get(7) = %+v, %v; want lamp, true", got, ok)
	}
	got.Name = "changed by a reader"
	if again, _ := c.Get(7); again.Name != "lamp" {
		t.Errorf("after a reader changed its value, Get(7) = %+v; want lamp", again)
	}
	if _, ok := c.Get(8); ok {
		t.Error("Get(8) found an id never put")
	}
}

func TestPutDoesNotFillFromAReadThatAnInvalidationOvertook(t *testing.T) {
	t.Parallel()
	b := newBus()
	c := New[int64, product](b)
	gen := c.Generation()
	b.gen.Add(1) // a write elsewhere committed while the read ran
	c.Put(9, &product{Name: "old"}, gen)
	if v, ok := c.Get(9); ok {
		t.Errorf("Get(9) = %+v: filled from a read older than an invalidation", v)
	}
	c.Put(9, &product{Name: "new"}, c.Generation())
	if v, ok := c.Get(9); !ok || v.Name != "new" {
		t.Errorf("Get(9) = %+v, %v; want new, true", v, ok)
	}
}

func TestNothingIsServedOrFilledWhileInvalidationsAreNotHeard(t *testing.T) {
	t.Parallel()
	b := newBus()
	c := New[int64, product](b)
	c.Put(1, &product{Name: "kept"}, c.Generation())
	b.live.Store(false)
	if _, ok := c.Get(1); ok {
		t.Error("a copy was served while invalidations were not heard")
	}
	c.Put(2, &product{Name: "unheard"}, c.Generation())
	b.live.Store(true)
	if _, ok := c.Get(2); ok {
		t.Error("a copy put while invalidations were not heard was kept")
	}
}

func TestDropAndClearRemoveCopies(t *testing.T) {
	t.Parallel()
	c := New[int64, product](newBus())
	for id := range int64(4) {
		c.Put(id, &product{}, c.Generation())
	}
	c.Drop(1, 2)
	for id, want := range []bool{true, false, false, true} {
		if _, got := c.Get(int64(id)); got != want {
			t.Errorf("after Drop(1, 2), Get(%d) found = %v, want %v", id, got, want)
		}
	}
	c.Clear()
	if got := c.Len(); got != 0 {
		t.Errorf("after Clear, Len() = %d, want 0", got)
	}
}

func TestCopiesLapse(t *testing.T) {
	t.Parallel()
	c := New[int64, product](newBus())
	c.ttl = -1 // lapsed as soon as kept
	c.Put(5, &product{}, c.Generation())
	if c.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", c.Len())
	}
	if _, ok := c.Get(5); ok {
		t.Error("a lapsed copy was served")
	}
}

func TestCacheStartsOverPastItsBound(t *testing.T) {
	t.Parallel()
	c := New[int64, product](newBus())
	c.max = 2
	for id := range int64(3) {
		c.Put(id, &product{}, c.Generation())
	}
	if got := c.Len(); got != 1 {
		t.Errorf("after 3 puts with room for 2, Len() = %d, want 1 (started over)", got)
	}
	if _, ok := c.Get(2); !ok {
		t.Error("the put that started over was not kept")
	}
}

package soldout

import (
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	a, b := flashsale.SalePool(1), flashsale.SalePool(2)
	var zero Memory // the zero value remembers until cleared
	ttl := NewMemory(time.Second)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	ttl.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	for name, c := range map[string]*Memory{"zero": &zero, "ttl": ttl} {
		if c.IsSoldOut(a) || c.Any() {
			t.Errorf("%s: IsSoldOut or Any before any mark", name)
		}
		c.Mark(a)
		if !c.Any() {
			t.Errorf("%s: Any after a mark = false", name)
		}
		if !c.IsSoldOut(a) || c.IsSoldOut(b) {
			t.Errorf("%s: IsSoldOut(a), IsSoldOut(b) = %v, %v; want true, false", name, c.IsSoldOut(a), c.IsSoldOut(b))
		}
		c.Clear(a)
		if c.IsSoldOut(a) {
			t.Errorf("%s: IsSoldOut after Clear", name)
		}
	}

	ttl.Mark(a)
	advance(999 * time.Millisecond)
	if !ttl.IsSoldOut(a) {
		t.Error("mark lapsed before its ttl")
	}
	advance(time.Millisecond)
	if ttl.IsSoldOut(a) || ttl.Any() {
		t.Errorf("mark outlived its ttl: IsSoldOut %v, Any %v", ttl.IsSoldOut(a), ttl.Any())
	}
	zero.Mark(b)
	if !zero.IsSoldOut(b) {
		t.Error("zero-value memory forgot a mark")
	}
}

package redis

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale"
)

// SoldOutCache remembers, in this process, the pools that answered SOLD_OUT, so that the
// stampede of buyers after a sell-out is answered without a Redis round trip each. It
// implements checkout.SoldOutMemo and is safe for concurrent use. The zero value remembers
// until cleared.
//
// A mark is cleared when a StockBus given this cache sees the pool's stock come back, which
// it sees only for pools with a local subscriber, and pub/sub drops messages across a
// reconnect; so a mark also lapses after the cache's TTL, bounding how long a pool whose
// units came back can wrongly look sold out here.
type SoldOutCache struct {
	ttl time.Duration
	now func() time.Time // time.Now unless a test sets it

	// marks maps a PoolKey to the time.Time its mark lapses (zero: never). sync.Map suits
	// a set read on every order attempt and written once per sell-out.
	marks sync.Map
	// lastMark is when the latest mark was made (unix nanoseconds, 0: never), for Any.
	lastMark atomic.Int64
}

// NewSoldOutCache returns a cache whose marks lapse after ttl; zero ttl keeps them until
// cleared. A second or two costs one Redis round trip per pool per process per ttl.
func NewSoldOutCache(ttl time.Duration) *SoldOutCache { return &SoldOutCache{ttl: ttl} }

func (c *SoldOutCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// MarkSoldOut remembers that pool answered SOLD_OUT.
func (c *SoldOutCache) MarkSoldOut(pool flashsale.PoolKey) {
	var until time.Time
	if c.ttl > 0 {
		until = c.clock().Add(c.ttl)
	}
	c.marks.Store(pool, until)
	c.lastMark.Store(c.clock().UnixNano())
}

// Any reports whether some pool may be marked: a mark was made, and (with a ttl) not so long
// ago that every mark has lapsed. A cleared mark may still count; that only costs a look.
func (c *SoldOutCache) Any() bool {
	last := c.lastMark.Load()
	if last == 0 {
		return false
	}
	return c.ttl <= 0 || c.clock().UnixNano()-last < int64(c.ttl)
}

// IsSoldOut reports whether pool answered SOLD_OUT recently and has not been cleared since.
func (c *SoldOutCache) IsSoldOut(pool flashsale.PoolKey) bool {
	v, ok := c.marks.Load(pool)
	if !ok {
		return false
	}
	until := v.(time.Time)
	if !until.IsZero() && !c.clock().Before(until) {
		// Only this mark: a fresh one stored meanwhile stays.
		c.marks.CompareAndDelete(pool, v)
		return false
	}
	return true
}

// Clear forgets pool's mark: its stock came back, or it was rebuilt.
func (c *SoldOutCache) Clear(pool flashsale.PoolKey) { c.marks.Delete(pool) }

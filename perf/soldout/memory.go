package soldout

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale"
)

// Memory remembers, in this process, the pools that answered SOLD_OUT. It is safe for
// concurrent use; the zero value remembers until cleared.
//
// Marks are cleared when stock comes back (Watch), but pub/sub drops messages across a
// reconnect, so a mark also lapses after the memory's TTL: that bounds how long a pool whose
// units came back can wrongly look sold out here.
type Memory struct {
	ttl time.Duration
	now func() time.Time // time.Now unless a test sets it

	// marks maps a PoolKey to the time.Time its mark lapses (zero: never). sync.Map suits
	// a set read on every order attempt and written once per sell-out.
	marks sync.Map
	// lastMark is when the latest mark was made (unix nanoseconds, 0: never), for Any.
	lastMark atomic.Int64
}

// NewMemory returns a memory whose marks lapse after ttl; zero ttl keeps them until cleared.
// Each lapse costs one Redis round trip per pool per process.
func NewMemory(ttl time.Duration) *Memory { return &Memory{ttl: ttl} }

func (m *Memory) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// Mark remembers that pool answered SOLD_OUT.
func (m *Memory) Mark(pool flashsale.PoolKey) {
	var until time.Time
	if m.ttl > 0 {
		until = m.clock().Add(m.ttl)
	}
	m.marks.Store(pool, until)
	m.lastMark.Store(m.clock().UnixNano())
}

// Any reports whether some pool may be marked: a mark was made, and (with a ttl) not so long
// ago that every mark has lapsed. A cleared mark may still count; that only costs a look.
func (m *Memory) Any() bool {
	last := m.lastMark.Load()
	if last == 0 {
		return false
	}
	return m.ttl <= 0 || m.clock().UnixNano()-last < int64(m.ttl)
}

// IsSoldOut reports whether pool answered SOLD_OUT recently and has not been cleared since.
func (m *Memory) IsSoldOut(pool flashsale.PoolKey) bool {
	v, ok := m.marks.Load(pool)
	if !ok {
		return false
	}
	until := v.(time.Time)
	if !until.IsZero() && !m.clock().Before(until) {
		// Only this mark: a fresh one stored meanwhile stays.
		m.marks.CompareAndDelete(pool, v)
		return false
	}
	return true
}

// Clear forgets pool's mark: its stock came back, or it was rebuilt.
func (m *Memory) Clear(pool flashsale.PoolKey) { m.marks.Delete(pool) }

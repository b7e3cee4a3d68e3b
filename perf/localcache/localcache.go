// Package localcache keeps copies of hot cache entries (products, sales, users) in process
// memory, so that a page read many times a second costs no round trip to the shared cache.
//
// A local copy is only as fresh as the invalidations this process hears. The cache takes
// them from an Invalidator (stores/redis carries them over pub/sub) and trusts its copies
// only while it says they are being heard; a read that overlapped an invalidation never
// fills a copy, as its value may predate the write.
package localcache

import (
	"sync"
	"time"
)

// Invalidator is the transport that tells this process of every write to a cached entry.
type Invalidator interface {
	// Generation changes with every invalidation and every loss of the transport.
	Generation() uint64
	// Live reports whether invalidations are being heard.
	Live() bool
}

// Defaults of a Cache. Entries lapse after DefaultTTL even if no invalidation came, which
// bounds the harm of one lost without the transport noticing.
const (
	DefaultTTL        = 5 * time.Second
	DefaultMaxEntries = 10_000
)

// Cache holds one entity type's local copies by id. Drop and Clear are the transport's
// to call when an entry is invalidated or every copy must go.
type Cache[K comparable, V any] struct {
	inv     Invalidator
	ttl     time.Duration
	max     int
	mu      sync.RWMutex
	entries map[K]entry[V]
}

type entry[V any] struct {
	v       *V
	expires int64 // unix nanoseconds
}

// New returns an empty cache that trusts inv.
func New[K comparable, V any](inv Invalidator) *Cache[K, V] {
	return &Cache[K, V]{inv: inv, ttl: DefaultTTL, max: DefaultMaxEntries, entries: map[K]entry[V]{}}
}

// Generation is taken before a read of the shared cache or the store, and given to Put
// with its result.
func (c *Cache[K, V]) Generation() uint64 { return c.inv.Generation() }

// Get returns a copy of id's entry (callers may not share one value), and nothing while
// invalidations are not heard.
func (c *Cache[K, V]) Get(id K) (*V, bool) {
	if !c.inv.Live() {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || time.Now().UnixNano() > e.expires {
		return nil, false
	}
	v := *e.v
	return &v, true
}

// Put keeps a copy of v unless anything was invalidated since gen was taken: the value may
// be older than that invalidation.
func (c *Cache[K, V]) Put(id K, v *V, gen uint64) {
	if !c.inv.Live() || c.inv.Generation() != gen {
		return
	}
	cp := *v
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inv.Generation() != gen { // an invalidation ran while we waited for the lock
		return
	}
	if len(c.entries) >= c.max {
		// Past the bound, start over rather than track recency.
		clear(c.entries)
	}
	c.entries[id] = entry[V]{v: &cp, expires: time.Now().Add(c.ttl).UnixNano()}
}

// Drop removes the copies of ids.
func (c *Cache[K, V]) Drop(ids ...K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.entries, id)
	}
}

// Clear removes every copy.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// Len is the number of copies held, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

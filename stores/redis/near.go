package redis

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Invalidations carries cache invalidations between processes, so that each process may keep
// a near copy of hot entries (products, sales, users) in memory: a product page read many
// times a second then costs no Redis round trip at all, and a write anywhere drops the copies
// everywhere within a pub/sub hop.
//
// The near copies are trusted only while the subscription is known to be up: a process that
// loses it, or is told it subscribed anew (after a reconnect, when messages may have been
// missed), drops every copy and fills none until the subscription is confirmed again.
type Invalidations struct {
	client  goredis.UniversalClient
	channel string
	log     *slog.Logger

	live atomic.Bool
	// gen changes with every invalidation heard or made and every loss of the
	// subscription: a read that started under another generation does not fill.
	gen atomic.Uint64

	mu    sync.Mutex
	drops map[string][]func([]int64) // kind -> drops of that kind's near copies
	clear []func()

	ps     *goredis.PubSub
	cancel context.CancelFunc
	done   chan struct{}
}

// NewInvalidations subscribes to prefix+"cache:invalidations" in the background. Close ends it.
func NewInvalidations(client goredis.UniversalClient, prefix string, log *slog.Logger) *Invalidations {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Invalidations{client: client, channel: prefix + "cache:invalidations", log: log,
		drops: map[string][]func([]int64){}, cancel: cancel, done: make(chan struct{})}
	b.ps = client.Subscribe(ctx, b.channel)
	go b.run(ctx)
	return b
}

// Close ends the subscription; near copies are no longer used.
func (b *Invalidations) Close() {
	b.cancel()
	b.ps.Close() // a Receive blocked on the connection does not watch its context
	<-b.done
}

// DropAll drops every near copy of this process (tests start cold with it).
func (b *Invalidations) DropAll() {
	b.gen.Add(1)
	b.mu.Lock()
	clears := b.clear
	b.mu.Unlock()
	for _, c := range clears {
		c()
	}
}

// Kinds of cached entries, as Watch takes them: the prefixes of their ids.
const (
	KindProduct = "prd"
	KindSale    = "sal"
	KindUser    = "usr"
	KindOrder   = "ord"
)

// Generation changes with every invalidation heard or made and every loss of the
// subscription. A cache above the stores (the GraphQL response cache) takes it before a read
// and keeps the read's result only if it has not changed since.
func (b *Invalidations) Generation() uint64 { return b.gen.Load() }

// Live reports whether the subscription is confirmed up, so that near copies may be trusted.
func (b *Invalidations) Live() bool { return b.live.Load() }

// Watch calls clear whenever an entry of one of kinds (KindProduct...) is
// invalidated, in this process or another, and whenever every near copy is dropped.
func (b *Invalidations) Watch(kinds []string, clear func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, kind := range kinds {
		b.drops[kind] = append(b.drops[kind], func([]int64) { clear() })
	}
	b.clear = append(b.clear, clear)
}

func (b *Invalidations) register(kind string, drop func([]int64), clear func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drops[kind] = append(b.drops[kind], drop)
	b.clear = append(b.clear, clear)
}

// publish queues the message on pipe (the invalidation's own DEL pipeline, so that other
// processes hear of it only once Redis no longer holds the entry).
func (b *Invalidations) publish(ctx context.Context, pipe goredis.Pipeliner, kind string, ids []int64) {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	pipe.Publish(ctx, b.channel, kind+":"+strings.Join(parts, ","))
}

// dropLocal drops this process's copies of ids (after the entry left Redis).
func (b *Invalidations) dropLocal(kind string, ids []int64) {
	b.gen.Add(1)
	b.mu.Lock()
	drops := b.drops[kind]
	b.mu.Unlock()
	for _, drop := range drops {
		drop(ids)
	}
}

func (b *Invalidations) run(ctx context.Context) {
	defer close(b.done)
	defer b.setLive(false)
	failures := 0
	for {
		msg, err := b.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects and subscribes again on the next Receive; until it
			// confirms, nothing near is trusted.
			b.setLive(false)
			failures++
			if failures == 1 {
				b.log.Warn("cache invalidations: subscription lost; reading through Redis until it returns", "err", err)
			}
			if !pauseBeforeResubscribing(ctx, failures) {
				return
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.setLive(false) // what was published before this moment may have been missed
				b.setLive(true)
			}
		case *goredis.Message:
			b.receive(m.Payload)
		}
	}
}

// setLive clears every near copy when the subscription is lost or renewed.
func (b *Invalidations) setLive(live bool) {
	b.gen.Add(1)
	if !live {
		b.DropAll()
	}
	b.live.Store(live)
}

func (b *Invalidations) receive(payload string) {
	kind, list, ok := strings.Cut(payload, ":")
	if !ok {
		return
	}
	var ids []int64
	for s := range strings.SplitSeq(list, ",") {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	b.dropLocal(kind, ids)
}

// near is one entity type's in-memory copies. Entries expire after ttl even if no
// invalidation came, which bounds the harm of one that was lost without the subscription
// noticing.
type near[K ~int64, V any] struct {
	bus     *Invalidations
	ttl     time.Duration
	max     int
	mu      sync.RWMutex
	entries map[K]nearEntry[V]
}

type nearEntry[V any] struct {
	v       *V
	expires int64 // unix nanoseconds
}

const (
	nearTTL = 5 * time.Second
	nearMax = 10_000
)

func newNear[K ~int64, V any](bus *Invalidations, kind string) *near[K, V] {
	n := &near[K, V]{bus: bus, ttl: nearTTL, max: nearMax, entries: map[K]nearEntry[V]{}}
	bus.register(kind, n.drop, n.clearAll)
	return n
}

// generation is taken before a read of Redis or the store, and given to put with its result.
func (n *near[K, V]) generation() uint64 { return n.bus.gen.Load() }

// get returns a copy of id's entry (callers may not share one value).
func (n *near[K, V]) get(id K) (*V, bool) {
	if !n.bus.live.Load() {
		return nil, false
	}
	n.mu.RLock()
	e, ok := n.entries[id]
	n.mu.RUnlock()
	if !ok || time.Now().UnixNano() > e.expires {
		return nil, false
	}
	v := *e.v
	return &v, true
}

// put keeps v unless anything was invalidated since gen was taken: the value may be older
// than that invalidation.
func (n *near[K, V]) put(id K, v *V, gen uint64) {
	if !n.bus.live.Load() || n.bus.gen.Load() != gen {
		return
	}
	c := *v
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.bus.gen.Load() != gen { // an invalidation ran while we waited for the lock
		return
	}
	if len(n.entries) >= n.max {
		clear(n.entries)
	}
	n.entries[id] = nearEntry[V]{v: &c, expires: time.Now().Add(n.ttl).UnixNano()}
}

func (n *near[K, V]) drop(ids []int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		delete(n.entries, K(id))
	}
}

func (n *near[K, V]) clearAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.entries)
}

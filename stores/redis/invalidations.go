package redis

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Invalidations carries cache invalidations between processes over Redis pub/sub, so that
// each process may keep local copies of hot entries (perf/localcache) and drop them when any
// process writes. It is the caches' localcache.Invalidator: copies are trusted only while
// the subscription is known to be up, and a lost or renewed subscription (messages may have
// been missed) drops every copy.
type Invalidations struct {
	client  goredis.UniversalClient
	channel string
	log     *slog.Logger

	live atomic.Bool
	// gen changes with every invalidation heard or made and every loss of the
	// subscription: a read that started under another generation does not fill.
	gen atomic.Uint64

	mu    sync.Mutex
	drops map[string][]func([]int64) // kind -> drops of that kind's local copies
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

// Close ends the subscription; local copies are no longer used.
func (b *Invalidations) Close() {
	b.cancel()
	b.ps.Close() // a Receive blocked on the connection does not watch its context
	<-b.done
}

// DropAll drops every local copy of this process (tests start cold with it).
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

// Live reports whether the subscription is confirmed up, so that local copies may be trusted.
func (b *Invalidations) Live() bool { return b.live.Load() }

// Watch calls clear whenever an entry of one of kinds (KindProduct...) is
// invalidated, in this process or another, and whenever every local copy is dropped.
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
			// confirms, no local copy is trusted.
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

// setLive clears every local copy when the subscription is lost or renewed.
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

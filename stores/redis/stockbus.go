package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

var _ flashsale.StockEvents = (*StockBus)(nil)

// ErrBusClosed is returned by Subscribe once its StockBus is closed.
var ErrBusClosed = errors.New("stock bus closed")

// subscribeTimeout bounds the wait for Redis to confirm a pool's subscription. It is the
// bus's own, not the first subscriber's, since every later subscriber waits on it too.
const subscribeTimeout = 10 * time.Second

// StockBus carries pools' remaining counts between processes over Redis pub/sub, on one
// channel per pool, <prefix>stock:<pool>. It implements flashsale.StockEvents for the
// processes that change pools, and Subscribe for those that show live stock.
//
// A process holds one Redis subscription per pool however many local subscribers watch it,
// and drops it when the last one leaves. Each pool's subscription has its own connection,
// so pools come and go independently and a confirmation can never be mistaken for another
// pool's; the cost is a connection per pool watched in this process.
type StockBus struct {
	client  goredis.UniversalClient
	prefix  string
	restock func(flashsale.PoolKey)
	log     *slog.Logger
	now     func() time.Time

	// ctx is cancelled by Close; it bounds the Redis subscribes in flight.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the bus starts

	out *publisher

	mu     sync.Mutex
	topics map[flashsale.PoolKey]*topic // pools with local subscribers
	live   int                          // topics with a confirmed Redis subscription
	closed bool
}

// StockBusOptions are a StockBus's optional collaborators.
type StockBusOptions struct {
	// OnRestock, if set, is called with a pool when an event says it has units again, before
	// the pool's subscribers hear of it: the sold-out fast path forgets the pool then, so the
	// next buyer goes to Redis instead of being told it is sold out.
	OnRestock func(pool flashsale.PoolKey)
	// Log receives warnings about events it cannot read; nil means slog.Default().
	Log *slog.Logger
}

// NewStockBus returns a bus on client whose channels start with prefix ("" in production,
// a test's own prefix in tests). Close it to end its subscriptions and goroutines.
func NewStockBus(client goredis.UniversalClient, prefix string, opts StockBusOptions) *StockBus {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &StockBus{
		client: client, prefix: prefix, restock: opts.OnRestock, log: log, now: time.Now,
		ctx: ctx, cancel: cancel, topics: map[flashsale.PoolKey]*topic{},
		out: newPublisher(client, log, "stock counts"),
	}
}

func (b *StockBus) channel(pool flashsale.PoolKey) string { return b.prefix + "stock:" + string(pool) }

// PublishStock announces pool's remaining count to every process subscribed to it. It
// queues the event and returns: a background pipeline sends it, and a newer count of the
// same pool queued before it went replaces it (readers re-read the count anyway). Pub/sub
// keeps nothing: a process not subscribed at that moment never sees the event.
func (b *StockBus) PublishStock(_ context.Context, pool flashsale.PoolKey, remaining int) error {
	payload, err := encodeEvent(pool, remaining, b.now())
	if err != nil {
		return fmt.Errorf("publish stock of %s: %w", pool, err)
	}
	b.out.publish(b.channel(pool), payload, true)
	return nil
}

// Subscribe starts a feed of pool's remaining count. It returns once Redis has confirmed the
// pool's subscription, so every event published after it returns is delivered (short of a
// lost connection: pub/sub drops what is published while it reconnects). The feed ends when
// ctx is done or on Close.
//
// Events carry counts from many processes, each sent as its change happened; two changes at
// nearly the same moment may arrive in either order.
func (b *StockBus) Subscribe(ctx context.Context, pool flashsale.PoolKey) (*Subscription, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBusClosed
	}
	t := b.topics[pool]
	if t == nil {
		t = &topic{pool: pool, channel: b.channel(pool), ready: make(chan struct{}), subs: map[*Subscription]struct{}{}}
		b.topics[pool] = t
		b.wg.Add(1)
		go b.open(t)
	}
	s := &Subscription{bus: b, topic: t, updates: make(chan *flashsale.StockUpdate, 1)}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	b.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { b.leave(s) })
	t.mu.Lock()
	s.stop = stop
	t.mu.Unlock()
	if err := t.awaitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("subscribe to stock of %s: %w", pool, err)
	}
	return s, nil
}

// open subscribes to t's channel on Redis, waits for the confirmation, and then runs t.
func (b *StockBus) open(t *topic) {
	defer b.wg.Done()
	ctx, cancel := context.WithTimeout(b.ctx, subscribeTimeout)
	defer cancel()
	ps := b.client.Subscribe(ctx, t.channel)
	b.mu.Lock()
	t.ps = ps // from here on Close can cut the wait below short by closing ps
	closed := b.closed
	b.mu.Unlock()

	var err error
	if !closed {
		// On a fresh connection the first reply is the SUBSCRIBE's; once it is read, Redis
		// sends us everything published to the channel.
		_, err = ps.Receive(ctx)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		err = ErrBusClosed
	case err == nil && b.topics[t.pool] != t:
		err = errors.New("no subscribers left") // they all left while we subscribed
	}
	if err != nil {
		ps.Close() // perhaps a second time, after Close: harmless
		t.ps = nil
		if b.topics[t.pool] == t {
			// Later subscribers try afresh rather than inherit the failure.
			delete(b.topics, t.pool)
		}
		t.err = err
		close(t.ready)
		return
	}
	t.confirmed = true
	b.live++
	b.wg.Add(1)
	go b.run(t, ps.Channel())
	close(t.ready)
}

// run hands each event of t's channel to its subscribers until the PubSub is closed.
//
// Events from different processes can arrive out of order (a 1 published just before a 0
// may land after it), so the count an event carries is only a fallback: run reads the pool's
// count afresh after each burst of events, and a read made after the last change's event
// arrived sees the final count. Events that queued up meanwhile are coalesced into one read.
func (b *StockBus) run(t *topic, msgs <-chan *goredis.Message) {
	defer b.wg.Done()
	stockKey := newPoolKeys(b.prefix, t.pool).stock
	for m := range msgs {
		e, ok := b.decode(m)
	drain:
		for {
			select {
			case next, open := <-msgs:
				if !open {
					break drain
				}
				if ne, nok := b.decode(next); nok {
					e, ok = ne, true
				}
			default:
				break drain
			}
		}
		if !ok {
			continue
		}
		if n, err := b.client.Get(b.ctx, stockKey).Int(); err == nil {
			e.Remaining = max(n, 0)
		}
		// Before the subscribers hear of it, so that a buyer who reacts at once is not told
		// it is still sold out.
		if e.Remaining > 0 && b.restock != nil {
			b.restock(t.pool)
		}
		t.deliver(flashsale.StockUpdate{Remaining: e.Remaining, At: e.At})
	}
}

func (b *StockBus) decode(m *goredis.Message) (stockEvent, bool) {
	e, err := decodeEvent(m.Payload)
	if err != nil {
		b.log.Warn("ignoring stock event", "channel", m.Channel, "err", err)
		return e, false
	}
	return e, true
}

// leave ends s, and the pool's Redis subscription if s was its last local subscriber.
func (b *StockBus) leave(s *Subscription) {
	t := s.topic
	b.mu.Lock()
	var ps *goredis.PubSub
	if t.remove(s) == 0 && b.topics[t.pool] == t {
		delete(b.topics, t.pool)
		// A topic still subscribing is left to open, which sees it is gone and closes ps.
		if t.confirmed {
			ps, t.ps = t.ps, nil
			b.live--
		}
	}
	b.mu.Unlock()
	if ps != nil {
		// Closing the PubSub closes its message channel, which ends run.
		ps.Close()
	}
}

// Context is done once the bus is closed; goroutines holding subscriptions of the bus's
// owner end with it.
func (b *StockBus) Context() context.Context { return b.ctx }

// Subscriptions returns how many pools this bus holds a Redis subscription for.
func (b *StockBus) Subscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live
}

// Close ends every subscription, closing their Updates channels, and waits for the bus's
// goroutines to finish. Subscribe fails afterwards; PublishStock still works.
func (b *StockBus) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	defer b.out.close()
	var open []*goredis.PubSub
	for pool, t := range b.topics {
		t.closeAll()
		// Including those still subscribing, whose wait for Redis this cuts short.
		if t.ps != nil {
			open = append(open, t.ps)
		}
		delete(b.topics, pool)
	}
	b.live = 0
	b.mu.Unlock()

	b.cancel() // subscribes in flight give up
	for _, ps := range open {
		ps.Close()
	}
	b.wg.Wait()
}

package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// OrderBus carries order changes between processes over one Redis channel: whichever process
// changes an order publishes it, and each API process holds one subscription (opened with its
// first local subscriber) and hands each order to the subscribers of its buyer. One channel
// for all orders keeps Redis subscriptions to one per process however many buyers watch.
type OrderBus struct {
	client  goredis.UniversalClient
	channel string
	log     *slog.Logger
	out     *publisher

	mu     sync.Mutex
	subs   map[flashsale.UserID]map[*orderSub]struct{}
	ps     *goredis.PubSub
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type orderSub struct{ ch chan *flashsale.Order }

// orderBuffer is how many unread changes a subscriber may fall behind by before the oldest
// is dropped; a buyer has few orders, so only a stalled reader gets there.
const orderBuffer = 32

// NewOrderBus returns a bus whose channel is prefix+"orders". Close ends its subscription.
func NewOrderBus(client goredis.UniversalClient, prefix string, log *slog.Logger) *OrderBus {
	ctx, cancel := context.WithCancel(context.Background())
	return &OrderBus{client: client, channel: prefix + "orders", log: log, ctx: ctx, cancel: cancel,
		out:  newPublisher(client, log, "order changes"),
		subs: map[flashsale.UserID]map[*orderSub]struct{}{}}
}

// PublishOrder announces o's new state to every process. It queues the change and returns;
// a background pipeline sends the changes in the order they were published.
func (b *OrderBus) PublishOrder(_ context.Context, o *flashsale.Order) error {
	payload, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("publish order %s: %w", o.ID, err)
	}
	b.out.publish(b.channel, payload, false)
	return nil
}

// SubscribeOrders returns a stream of the user's order changes, which ends (and is closed)
// when ctx ends or the bus closes.
func (b *OrderBus) SubscribeOrders(ctx context.Context, user flashsale.UserID) (<-chan *flashsale.Order, error) {
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	s := &orderSub{ch: make(chan *flashsale.Order, orderBuffer)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBusClosed
	}
	if b.subs[user] == nil {
		b.subs[user] = map[*orderSub]struct{}{}
	}
	b.subs[user][s] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[user][s]; !ok {
			return // Close has ended it
		}
		delete(b.subs[user], s)
		if len(b.subs[user]) == 0 {
			delete(b.subs, user)
		}
		close(s.ch)
	})
	return s.ch, nil
}

// start opens the process's subscription once and waits for Redis to confirm it.
func (b *OrderBus) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBusClosed
	}
	if b.ps != nil {
		return nil
	}
	ps := b.client.Subscribe(ctx, b.channel)
	confirmCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := ps.Receive(confirmCtx); err != nil {
		ps.Close()
		return fmt.Errorf("subscribe to order changes: %w", err)
	}
	b.ps = ps
	b.wg.Go(func() { b.run(ps) })
	return nil
}

func (b *OrderBus) run(ps *goredis.PubSub) {
	ch := ps.Channel()
	for {
		select {
		case <-b.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			var o flashsale.Order
			if err := json.Unmarshal([]byte(m.Payload), &o); err != nil {
				b.log.Warn("unreadable order change", "err", err)
				continue
			}
			b.deliver(&o)
		}
	}
}

// deliver hands o to its buyer's subscribers without ever blocking: a full buffer loses its
// oldest change.
func (b *OrderBus) deliver(o *flashsale.Order) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[o.UserID] {
		own := *o
		select {
		case s.ch <- &own:
		default:
			select {
			case <-s.ch:
			default:
			}
			s.ch <- &own
		}
	}
}

// Subscribers returns how many local subscribers the bus feeds (tests).
func (b *OrderBus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.subs {
		n += len(m)
	}
	return n
}

// Close ends the subscription and every subscriber's stream, and waits for its goroutine.
// SubscribeOrders fails afterwards.
func (b *OrderBus) Close() {
	defer b.out.close()
	b.cancel()
	b.mu.Lock()
	b.closed = true
	if b.ps != nil {
		b.ps.Close()
	}
	for user, subs := range b.subs {
		for s := range subs {
			close(s.ch)
		}
		delete(b.subs, user)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

package soldout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/flashsale/flashsale"
)

// subscriber records the subscriptions a Watch starts.
type subscriber struct {
	mu     sync.Mutex
	pools  []flashsale.PoolKey
	open   int
	err    error
	closed chan struct{} // receives once per closed subscription
}

func (s *subscriber) SubscribeStock(_ context.Context, pool flashsale.PoolKey) (Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pools = append(s.pools, pool)
	if s.err != nil {
		return nil, s.err
	}
	s.open++
	return subscription{s}, nil
}

type subscription struct{ s *subscriber }

func (c subscription) Close() {
	c.s.mu.Lock()
	c.s.open--
	c.s.mu.Unlock()
	c.s.closed <- struct{}{}
}

func TestWatchSubscribesOncePerPoolUntilClosed(t *testing.T) {
	t.Parallel()
	a, b := flashsale.SalePool(1), flashsale.SalePool(2)
	sub := &subscriber{closed: make(chan struct{}, 10)}
	w := NewWatch(NewMemory(0), sub, slog.New(slog.DiscardHandler))
	w.Mark(a)
	w.Mark(a)
	w.Mark(b)
	if !w.IsSoldOut(a) || !w.IsSoldOut(b) || !w.Any() {
		t.Error("a Watch did not remember its marks")
	}
	w.Close()
	sub.mu.Lock()
	pools, open := len(sub.pools), sub.open
	sub.mu.Unlock()
	if pools != 2 || open != 0 {
		t.Errorf("after Close: %d subscriptions started, %d open; want 2, 0", pools, open)
	}
	w.Mark(flashsale.SalePool(3))
	if !w.IsSoldOut(flashsale.SalePool(3)) {
		t.Error("a closed Watch forgot a mark")
	}
	w.Close()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.pools) != 2 {
		t.Errorf("a closed Watch subscribed: %d subscriptions, want 2", len(sub.pools))
	}
}

func TestWatchWatchesAgainAfterAFailedSubscribe(t *testing.T) {
	t.Parallel()
	a := flashsale.SalePool(1)
	sub := &subscriber{err: errors.New("no bus"), closed: make(chan struct{}, 10)}
	w := NewWatch(NewMemory(0), sub, slog.New(slog.DiscardHandler))
	defer w.Close()
	w.Mark(a)
	w.wg.Wait() // the failed subscription's goroutine has ended
	w.Mark(a)
	w.wg.Wait()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.pools) != 2 {
		t.Errorf("%d subscribes after two marks whose subscription failed, want 2", len(sub.pools))
	}
	if !w.IsSoldOut(a) {
		t.Error("a failed subscription lost the mark")
	}
}

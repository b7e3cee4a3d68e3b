package stockfeed

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// fakeFeed is a pool's feed the test writes to; like the stores' feeds it keeps only the
// newest update not yet read.
type fakeFeed struct {
	ch     chan *flashsale.StockUpdate
	closed chan struct{}
	once   sync.Once
}

func newFakeFeed() *fakeFeed {
	return &fakeFeed{ch: make(chan *flashsale.StockUpdate, 1), closed: make(chan struct{})}
}

func (f *fakeFeed) Updates() <-chan *flashsale.StockUpdate { return f.ch }
func (f *fakeFeed) Close()                                 { f.once.Do(func() { close(f.closed) }) }

// send replaces any unread update with u, as the stores' feeds do.
func (f *fakeFeed) send(n int) {
	u := &flashsale.StockUpdate{Remaining: n, At: time.Now()}
	for {
		select {
		case f.ch <- u:
			return
		default:
			select {
			case <-f.ch:
			default:
			}
		}
	}
}

type fakeSource struct{ feed *fakeFeed }

func (s fakeSource) SubscribeStock(context.Context, flashsale.PoolKey) (Feed, error) {
	return s.feed, nil
}

func current(n int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return n, nil }
}

// A subscriber gets the current count first, then at most maxPerSecond updates a second
// however fast the count drops, and always the newest count last.
func TestWatchCoalescesToTheRateAndEndsOnTheNewest(t *testing.T) {
	t.Parallel()
	feed := newFakeFeed()
	const perSecond = 20 // one update per 50 ms
	s := NewStock(fakeSource{feed}, perSecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := s.Watch(ctx, "sale:1", current(1000))
	if err != nil {
		t.Fatal(err)
	}
	first := <-out
	if first.Remaining != 1000 {
		t.Fatalf("first update = %d, want the current 1000", first.Remaining)
	}

	var got []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range out {
			got = append(got, u.Remaining)
			if u.Remaining == 0 {
				return
			}
		}
	}()
	start := time.Now()
	for n := 999; n >= 0; n-- { // a thousand changes in about half a second
		feed.send(n)
		if n%2 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the final 0 never came; got %v", got)
	}
	elapsed := time.Since(start)
	if len(got) == 0 || got[len(got)-1] != 0 {
		t.Fatalf("updates = %v, want them to end on 0", got)
	}
	// At most one update per interval, plus one for rounding at either end.
	if max := int(elapsed/(time.Second/perSecond)) + 2; len(got) > max {
		t.Errorf("%d updates in %v, want at most %d at %d a second", len(got), elapsed, max, perSecond)
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Errorf("updates out of order: %v", got)
			break
		}
	}
}

// A reader that stops reading holds nothing back: once ctx ends the stream closes and the
// feed is released, even with an update waiting to be sent.
func TestWatchReleasesTheFeedWhenTheSubscriberLeaves(t *testing.T) {
	t.Parallel()
	feed := newFakeFeed()
	s := NewStock(fakeSource{feed}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	out, err := s.Watch(ctx, "sale:1", current(5))
	if err != nil {
		t.Fatal(err)
	}
	<-out
	feed.send(4) // never read
	cancel()
	select {
	case <-feed.closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the feed was not closed after the subscriber left")
	}
	for range out { // the stream must close, not block
	}
}

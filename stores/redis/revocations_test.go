package redis

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// heard collects what a Revocations' listener is told.
type heard struct {
	mu       sync.Mutex
	families []string
	changed  chan struct{}
}

func newHeard() *heard { return &heard{changed: make(chan struct{}, 1)} }

func (h *heard) add(families []string) {
	h.mu.Lock()
	h.families = append(h.families, families...)
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// await waits until every family in want has been heard, and returns all that were.
func (h *heard) await(t *testing.T, want ...string) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		got := slices.Clone(h.families)
		h.mu.Unlock()
		if !slices.ContainsFunc(want, func(f string) bool { return !slices.Contains(got, f) }) {
			return got
		}
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatalf("heard %v; want %v among them", got, want)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A revocation published by one process is heard by every process listening on the prefix,
// and by none on another prefix.
func TestRevocationsReachEveryListener(t *testing.T) {
	t.Parallel()
	c, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	url := testenv.RedisURL(t)
	listeners := make([]*heard, 2)
	for i := range listeners {
		listeners[i] = newHeard()
		r := NewRevocations(newClient(t, url), prefix, time.Minute, quietLog())
		r.Listen(listeners[i].add)
		t.Cleanup(r.Close)
	}
	elsewhere := newHeard()
	other := NewRevocations(newClient(t, url), prefix+"other:", time.Minute, quietLog())
	other.Listen(elsewhere.add)
	t.Cleanup(other.Close)

	publisher := NewRevocations(c, prefix, time.Minute, quietLog())
	// A listener may not be subscribed yet when the first is published: it then hears it
	// when it catches up. Either way it hears it.
	if err := publisher.PublishRevoked(context.Background(), []string{"family-1", "family-2"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range listeners {
		h.await(t, "family-1", "family-2")
	}
	if err := publisher.PublishRevoked(context.Background(), []string{"family-3"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range listeners {
		h.await(t, "family-3")
	}
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if len(elsewhere.families) != 0 {
		t.Errorf("a listener on another prefix heard %v; want nothing", elsewhere.families)
	}
}

// A process that starts listening after a revocation was published (a replica starting, or
// one that was reconnecting) hears those of the last window, and not older ones.
func TestRevocationsCatchUpOnSubscribing(t *testing.T) {
	t.Parallel()
	c, prefix := testenv.Redis(t)
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	const window = time.Minute
	publisher := NewRevocations(c, prefix, window, quietLog())
	if err := publisher.PublishRevoked(context.Background(), []string{"recent"}); err != nil {
		t.Fatal(err)
	}
	publisher.now = func() time.Time { return time.Now().Add(-window - time.Second) }
	if err := publisher.PublishRevoked(context.Background(), []string{"too-old"}); err != nil {
		t.Fatal(err)
	}

	h := newHeard()
	late := NewRevocations(newClient(t, testenv.RedisURL(t)), prefix, window, quietLog())
	late.Listen(h.add)
	t.Cleanup(late.Close)
	if got := h.await(t, "recent"); slices.Contains(got, "too-old") {
		t.Errorf("heard %v on subscribing; want only the revocations of the last %v", got, window)
	}
}

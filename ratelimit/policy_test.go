package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flashsale/flashsale"
)

// fakeShared is a shared limiter that refuses everything, or fails while down.
type fakeShared struct {
	mu    sync.Mutex
	down  bool
	calls int
}

func (f *fakeShared) Allow(context.Context, string, flashsale.Limit) (flashsale.RateDecision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return flashsale.RateDecision{}, errors.New("connection refused")
	}
	return flashsale.RateDecision{RetryAfter: 3 * time.Second}, nil
}

func (f *fakeShared) set(down bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	return f.calls
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func wantRefusal(t *testing.T, err error, what string) {
	t.Helper()
	var e *flashsale.Error
	if !errors.As(err, &e) || e.Code != flashsale.ERATELIMITED || e.RetryAfter <= 0 {
		t.Fatalf("%s: got %v, want RATE_LIMITED with a RetryAfter", what, err)
	}
}

// The local limiter spends the burst, then refuses, per key and per budget, without asking
// the shared limiter; a budget without a limit refuses nothing.
func TestLocalBudgets(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p := New(Config{Budgets: Budgets{Orders: flashsale.Limit{Rate: 1, Period: time.Minute, Burst: 3}}, Registry: reg})
	for i := range 3 {
		if err := p.Local(Orders, "user:1"); err != nil {
			t.Fatalf("order %d of the burst: %v", i, err)
		}
	}
	err := p.Local(Orders, "user:1")
	wantRefusal(t, err, "the order after the burst")
	if s := flashsale.RetryAfterSeconds(err); s < 1 || s > 60 {
		t.Errorf("retry after %d s, want between 1 and 60", s)
	}
	if err := p.Local(Orders, "user:2"); err != nil {
		t.Errorf("another viewer's first order: %v", err)
	}
	for range 100 {
		if err := p.Local(Requests, "user:1"); err != nil {
			t.Fatalf("a budget without a limit refused: %v", err)
		}
	}
	if got := testutil.ToFloat64(p.refused[Orders][0]); got != 1 {
		t.Errorf("local order refusals counted %v, want 1", got)
	}
}

// Forgetting the least recently used keys bounds memory; a forgotten key starts afresh.
func TestLocalKeysBounded(t *testing.T) {
	t.Parallel()
	p := New(Config{Budgets: Budgets{Requests: flashsale.Limit{Rate: 1, Period: time.Hour, Burst: 1}}, LocalKeys: 10})
	for i := range 100 {
		p.Local(Requests, "addr:"+strings.Repeat("x", i))
	}
	if n := p.local.buckets.Len(); n != 10 {
		t.Errorf("remembered %d keys, want the bound 10", n)
	}
}

// While the shared limiter fails, requests pass on the local budget alone, the switch is
// logged once, and one request a second probes it; once it answers, it refuses again.
func TestSharedDownFallsBackToLocal(t *testing.T) {
	t.Parallel()
	shared := &fakeShared{}
	var logs syncBuffer
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	p := New(Config{
		Budgets: Budgets{Requests: flashsale.Limit{Rate: 1000, Period: time.Second, Burst: 1000}},
		Shared:  shared, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	wantRefusal(t, p.Check(ctx, Requests, "addr:1"), "the shared limiter refusing")

	shared.set(true)
	for i := range 50 {
		if err := p.Check(ctx, Requests, "addr:1"); err != nil {
			t.Fatalf("request %d while the shared limiter is down: %v", i, err)
		}
	}
	if calls := shared.set(true); calls != 2 {
		t.Errorf("the shared limiter was asked %d times, want 2: once to fail, then not again within a second", calls)
	}
	if n := strings.Count(logs.String(), "cannot be reached"); n != 1 {
		t.Errorf("logged the switch %d times, want once:\n%s", n, logs.String())
	}
	mu.Lock()
	now = now.Add(2 * probeEvery)
	mu.Unlock()
	shared.set(false)
	wantRefusal(t, p.Check(ctx, Requests, "addr:1"), "the probe after the shared limiter is back")
	wantRefusal(t, p.Check(ctx, Requests, "addr:1"), "the request after the probe")
	if !strings.Contains(logs.String(), "answers again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(p.sharedUp); got != 1 {
		t.Errorf("shared_up = %v after recovery, want 1", got)
	}
}

// CheckSoon lets the first order through at once and asks the shared limiter in the
// background; once it has refused, the key is refused here too, with its retry-after, until
// that passes.
func TestCheckSoonLearnsTheSharedRefusal(t *testing.T) {
	t.Parallel()
	shared := &fakeShared{}
	p := New(Config{Budgets: Budgets{Orders: flashsale.Limit{Rate: 100, Period: time.Second, Burst: 100}}, Shared: shared})
	now := time.Now()
	p.now = func() time.Time { return now }
	ctx := context.Background()
	if err := p.CheckSoon(ctx, Orders, "buyer"); err != nil {
		t.Fatalf("first order: %v; want it let through while the shared limiter is asked", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		err = p.CheckSoon(ctx, Orders, "buyer")
	}
	if flashsale.ErrorCode(err) != flashsale.ERATELIMITED || flashsale.RetryAfterSeconds(err) != 3 {
		t.Fatalf("after the shared refusal: %v; want RATE_LIMITED with retryAfter 3", err)
	}
	if err := p.CheckSoon(ctx, Orders, "someone else"); err != nil {
		t.Errorf("another key: %v; want it let through", err)
	}
	now = now.Add(4 * time.Second)
	if err := p.CheckSoon(ctx, Orders, "buyer"); err != nil {
		t.Errorf("after the retry-after: %v; want it let through", err)
	}
}

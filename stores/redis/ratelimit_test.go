package redis

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// Two processes (two clients, two limiters) spend one budget: the burst passes in all, split
// between them, and the next event is refused with a wait no longer than one interval.
func TestRateLimiterSharesOneBudget(t *testing.T) {
	t.Parallel()
	first, prefix := testenv.RedisClient(t)
	second := otherClient(t)
	limiters := []*RateLimiter{NewRateLimiter(first, prefix), NewRateLimiter(second, prefix)}
	limit := flashsale.Limit{Rate: 1, Period: time.Minute, Burst: 5}
	ctx := context.Background()
	allowed := 0
	for i := range 10 {
		d, err := limiters[i%2].Allow(ctx, "account:a@example.test", limit)
		if err != nil {
			t.Fatalf("Allow #%d: %v", i, err)
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfter <= 0 || d.RetryAfter > limit.Interval() {
			t.Errorf("refusal #%d: RetryAfter = %s, want in (0, %s]", i, d.RetryAfter, limit.Interval())
		}
	}
	if allowed != limit.Burst {
		t.Errorf("allowed %d of 10 events spread over two limiters, want the burst %d", allowed, limit.Burst)
	}
	// Another key, and the same key under another prefix, have budgets of their own.
	for _, c := range []struct {
		l   *RateLimiter
		key string
	}{{limiters[0], "account:b@example.test"}, {NewRateLimiter(first, testenv.Name()+":"), "account:a@example.test"}} {
		if d, err := c.l.Allow(ctx, c.key, limit); err != nil || !d.Allowed {
			t.Errorf("Allow(%s) = %+v, %v; want allowed", c.key, d, err)
		}
	}
}

// A Redis that cannot be reached is an error, never a refusal.
func TestRateLimiterUnreachable(t *testing.T) {
	t.Parallel()
	c := newClient(t, "redis://127.0.0.1:1/0")
	d, err := NewRateLimiter(c, "x:").Allow(context.Background(), "k", flashsale.Limit{Rate: 1, Period: time.Second, Burst: 1})
	if err == nil || d.Allowed {
		t.Errorf("Allow on an unreachable Redis = %+v, %v; want an error", d, err)
	}
}

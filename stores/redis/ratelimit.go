package redis

import (
	"context"
	"fmt"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// RateLimiter implements flashsale.RateLimiter with redis_rate's GCRA script: one round trip
// per event, and every process sharing the Redis shares the budgets.
//
// A key is stored as rate:<prefix>rl:{<key>}; the hash tag is the whole key, so keys spread
// over a Redis Cluster's nodes.
type RateLimiter struct {
	limiter *redis_rate.Limiter
	prefix  string
}

// NewRateLimiter returns a limiter keeping its counts in client under prefix.
func NewRateLimiter(client goredis.UniversalClient, prefix string) *RateLimiter {
	return &RateLimiter{limiter: redis_rate.NewLimiter(client), prefix: prefix}
}

// Allow takes one event from key's budget.
func (l *RateLimiter) Allow(ctx context.Context, key string, limit flashsale.Limit) (flashsale.RateDecision, error) {
	res, err := l.limiter.Allow(ctx, l.prefix+"rl:{"+key+"}", redis_rate.Limit{
		Rate: limit.Rate, Period: limit.Period, Burst: limit.Burst,
	})
	if err != nil {
		return flashsale.RateDecision{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return flashsale.RateDecision{Allowed: true}, nil
	}
	return flashsale.RateDecision{RetryAfter: max(res.RetryAfter, 0)}, nil
}

var _ flashsale.RateLimiter = (*RateLimiter)(nil)

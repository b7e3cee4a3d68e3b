package redis

import (
	"context"
	"fmt"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// RateLimiter implements flashsale.RateLimiter with redis_rate's GCRA script, every process
// sharing the Redis sharing the budgets. Concurrent events share round trips: redis_rate
// runs its script through scriptBatcher, which pipelines the calls that arrive together, as
// the reservations are (see reservations.go). In a sale's opening second every order spends
// its buyer's budget, next to the reservations in the same Redis.
//
// A key is stored as rate:<prefix>rl:{<key>}; the hash tag is the whole key, so keys spread
// over a Redis Cluster's nodes.
type RateLimiter struct {
	limiter *redis_rate.Limiter
	prefix  string
}

// NewRateLimiter returns a limiter keeping its counts in client under prefix.
func NewRateLimiter(client goredis.UniversalClient, prefix string) *RateLimiter {
	b := &scriptBatcher{UniversalClient: client}
	b.calls = combine.New(1, rateBatch, rateWriters, b.evalMany, nil)
	return &RateLimiter{limiter: redis_rate.NewLimiter(b), prefix: prefix}
}

const (
	rateBatch   = 128
	rateWriters = 2
)

// scriptBatcher is the client redis_rate runs its script through: EvalSha calls made at
// once go to Redis in one pipeline; the rest go straight to the client.
type scriptBatcher struct {
	goredis.UniversalClient
	calls *combine.Combiner[evalCall, any]
}

type evalCall struct {
	sha  string
	keys []string
	args []any
}

func (b *scriptBatcher) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *goredis.Cmd {
	v, err := b.calls.Do(ctx, 0, evalCall{sha: sha, keys: keys, args: args})
	cmd := goredis.NewCmd(ctx)
	cmd.SetVal(v)
	cmd.SetErr(err)
	return cmd
}

// evalMany runs a batch of EvalSha calls in one pipeline; each keeps its own reply or error
// (NOSCRIPT included, which redis_rate answers by sending the script itself).
func (b *scriptBatcher) evalMany(ctx context.Context, _ int, calls []evalCall) ([]combine.Outcome[any], error) {
	if len(calls) == 1 {
		v, err := b.UniversalClient.EvalSha(ctx, calls[0].sha, calls[0].keys, calls[0].args...).Result()
		return []combine.Outcome[any]{{Val: v, Err: err}}, nil
	}
	pipe := b.UniversalClient.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = pipe.EvalSha(ctx, c.sha, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	outs := make([]combine.Outcome[any], len(calls))
	for i, cmd := range cmds {
		outs[i].Val, outs[i].Err = cmd.Result()
	}
	return outs, nil
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

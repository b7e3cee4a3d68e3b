package ratelimit

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/flashsale/flashsale"
)

// local is the in-process limiter: a token bucket per budget and key, the least recently
// used forgotten past a bound, since clients choose the keys (a forgotten key starts with a
// full budget again, so the bound only matters under a flood of distinct keys).
type local struct {
	buckets *lru.Cache[localKey, *rate.Limiter]
}

type localKey struct {
	budget Budget
	key    string
}

func newLocal(size int) *local {
	c, err := lru.New[localKey, *rate.Limiter](size)
	if err != nil {
		panic(err) // only for a size below 1, which New never passes
	}
	return &local{buckets: c}
}

// allow takes one event from the bucket of budget and key and, when it is refused, says
// how long until it would pass.
func (l *local) allow(budget Budget, key string, limit flashsale.Limit, now time.Time) (time.Duration, bool) {
	k := localKey{budget, key}
	b, ok := l.buckets.Get(k)
	if !ok {
		b = rate.NewLimiter(rate.Every(limit.Interval()), limit.Burst)
		if prev, found, _ := l.buckets.PeekOrAdd(k, b); found {
			b = prev
		}
	}
	if b.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - b.TokensAt(now)
	return time.Duration(missing * float64(limit.Interval())), false
}

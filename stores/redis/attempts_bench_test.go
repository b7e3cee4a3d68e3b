package redis

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// BenchmarkCountRefusalFromMemory is what counting one SOLD_OUT refusal answered from memory
// costs on the stampede's path: the tally's atomic add, beside the baseline it replaces, one
// Redis INCR per refusal.
func BenchmarkCountRefusalFromMemory(b *testing.B) {
	c, prefix := testenv.Redis(b)
	b.Cleanup(func() { c.Del(context.Background(), newPoolKeys(prefix, "sale:bench").attempts) })
	pool := flashsale.PoolKey("sale:bench")
	b.Run("tally", func(b *testing.B) {
		tally := NewAttemptTally(c, prefix, time.Second, nil)
		defer tally.Close()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tally.Add(pool)
			}
		})
	})
	b.Run("incr per refusal", func(b *testing.B) {
		key := newPoolKeys(prefix, pool).attempts
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Incr(context.Background(), key).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

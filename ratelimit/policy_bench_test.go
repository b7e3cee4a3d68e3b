package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/redis"
)

// BenchmarkPolicy measures one check of each kind: in this process, allowed (one busy key,
// or a crowd of keys each new to it) and refused (what a flood from one key costs), and in
// Redis (the round trip every request that runs GraphQL pays). Compare them with the
// handler's answers from memory (e2e BenchmarkHandler): go test ./ratelimit -run '^$'
// -bench Policy.
func BenchmarkPolicy(b *testing.B) {
	huge := flashsale.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}
	keys := make([]string, 200_000)
	for i := range keys {
		keys[i] = "addr:10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	b.Run("local-allowed", func(b *testing.B) {
		p := New(Config{Budgets: Budgets{Requests: huge}})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if p.Local(Requests, "user:1") != nil {
					b.Fatal("refused")
				}
			}
		})
	})
	b.Run("local-crowd", func(b *testing.B) {
		p := New(Config{Budgets: Budgets{Requests: huge}})
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if p.Local(Requests, keys[int(n.Add(1))%len(keys)]) != nil {
					b.Fatal("refused")
				}
			}
		})
	})
	b.Run("local-refused", func(b *testing.B) {
		p := New(Config{Budgets: Budgets{Requests: flashsale.Limit{Rate: 1, Period: time.Hour, Burst: 1}}})
		p.Local(Requests, "user:1")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if p.Local(Requests, "user:1") == nil {
					b.Fatal("allowed")
				}
			}
		})
	})
	b.Run("shared", func(b *testing.B) {
		client, prefix := testenv.Redis(b)
		p := New(Config{Budgets: Budgets{Requests: huge}, Shared: redis.NewRateLimiter(client, prefix)})
		ctx := context.Background()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if p.Shared(ctx, Requests, "user:1") != nil {
					b.Fatal("refused")
				}
			}
		})
	})
}

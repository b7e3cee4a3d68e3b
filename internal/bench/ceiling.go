package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/stores/redis"
)

// CeilingResult is the raw Lua reservation (redis.Inventory.Reserve) called directly, with
// no HTTP, GraphQL or PostgreSQL in front: the most the burst could ever reach.
type CeilingResult struct {
	Attempts int     `json:"attempts"`
	PerS     float64 `json:"per_s"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	// Sold is the units reserved; Refused counts SOLD_OUT and LIMIT_EXCEEDED answers.
	Sold    int `json:"sold"`
	Refused int `json:"refused"`
	Errors  int `json:"errors"`
}

// runCeiling loads a pool of quantity units, perUserLimit per buyer, and makes attempts
// one-unit reservations on it, concurrency at a time, attempt i for buyer i mod buyers, each
// with its own idempotency key: the flash-sale burst, straight to Redis.
func runCeiling(ctx context.Context, client goredis.UniversalClient, prefix string, buyers, attempts, concurrency, quantity, perUserLimit int) (CeilingResult, error) {
	inv := redis.NewInventory(client, prefix)
	pool := flashsale.PoolKey("bench-ceiling")
	if _, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: quantity, PerUserLimit: perUserLimit}, nil,
		flashsale.PoolVersion{Generation: 1}); err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: load pool: %w", err)
	}
	defer inv.Forget(context.WithoutCancel(ctx), pool)
	lat := make(latencies, attempts)
	var sold, refused, failed atomic.Int64
	start := time.Now()
	loadgen.ForEach(ctx, attempts, concurrency, func(i int) {
		h := flashsale.Hold{
			OrderID:        flashsale.OrderID(i + 1),
			UserID:         flashsale.UserID(i%buyers + 1),
			Quantity:       1,
			IdempotencyKey: "ceiling-" + strconv.Itoa(i),
		}
		t0 := time.Now()
		_, err := inv.Reserve(ctx, pool, h)
		lat[i] = time.Since(t0)
		switch code := flashsale.ErrorCode(err); {
		case err == nil:
			sold.Add(1)
		case code == flashsale.ESOLDOUT, code == flashsale.ELIMITEXCEEDED:
			refused.Add(1)
		default:
			failed.Add(1)
		}
	})
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return CeilingResult{}, err
	}
	r := CeilingResult{
		Attempts: attempts, PerS: perSecond(attempts, elapsed), P50Ms: lat.percentileMs(50), P99Ms: lat.percentileMs(99),
		Sold: int(sold.Load()), Refused: int(refused.Load()), Errors: int(failed.Load()),
	}
	if r.Errors > 0 {
		return r, errors.New("ceiling: some reservations failed")
	}
	return r, nil
}

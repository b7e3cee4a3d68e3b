package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
	goredis "github.com/redis/go-redis/v9"
)

// ErrLockNotAcquired is the seed's refusal of a buyer who did not get the product's lock,
// whatever stock remains.
var ErrLockNotAcquired = errors.New("could not acquire lock")

// SeedLock is the benchmarks' baseline reservation, the lock-based design the shop's Lua
// pools are compared with: SET NX a lock on the product (10 s expiry), GET the stock, DECRBY
// it, and DEL the lock. A buyer who does not get the lock is refused however much stock is
// left, which is why it sells only part of what it offers under a crowd.
//
// Its faults are kept, since a baseline must be the design as written: the DEL runs on every
// path, so a refused buyer deletes the lock another buyer holds, and a DECRBY below zero is
// rolled back with INCRBY.
type SeedLock struct {
	client goredis.UniversalClient
	prefix string
}

// NewSeedLock returns the seed's inventory on client, with every key under prefix.
func NewSeedLock(client goredis.UniversalClient, prefix string) *SeedLock {
	return &SeedLock{client: client, prefix: prefix}
}

func (s *SeedLock) stockKey(product string) string { return s.prefix + "inventory:" + product }
func (s *SeedLock) lockKey(product string) string  { return s.prefix + "inventory:lock:" + product }

// Init sets the product's stock (the seed's initInventory).
func (s *SeedLock) Init(ctx context.Context, product string, quantity int) error {
	return s.client.Set(ctx, s.stockKey(product), quantity, 0).Err()
}

// Remaining returns the product's stock (the seed's getInventory).
func (s *SeedLock) Remaining(ctx context.Context, product string) (int, error) {
	v, err := s.client.Get(ctx, s.stockKey(product)).Int()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return v, err
}

// Reserve is the seed's reserveInventory: ok reports whether the units were taken.
// ErrLockNotAcquired when another buyer holds the lock.
func (s *SeedLock) Reserve(ctx context.Context, product string, quantity int) (ok bool, remaining int, err error) {
	stock, lock := s.stockKey(product), s.lockKey(product)
	defer func() {
		// The seed's `finally`: runs on every path, the refused one too.
		if delErr := s.client.Del(context.WithoutCancel(ctx), lock).Err(); delErr != nil && err == nil {
			err = delErr
		}
	}()
	acquired, err := s.client.SetNX(ctx, lock, "1", 10*time.Second).Result()
	if err != nil {
		return false, 0, err
	}
	if !acquired {
		return false, 0, ErrLockNotAcquired
	}
	current, err := s.client.Get(ctx, stock).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, 0, err
	}
	n, _ := strconv.Atoi(current) // the seed's parseInt(current || '0')
	if n < quantity {
		return false, n, nil
	}
	left, err := s.client.DecrBy(ctx, stock, int64(quantity)).Result()
	if err != nil {
		return false, 0, err
	}
	if left < 0 {
		if err := s.client.IncrBy(ctx, stock, int64(quantity)).Err(); err != nil {
			return false, 0, err
		}
		return false, 0, nil
	}
	return true, int(left), nil
}

// SeedLockResult is what the seed's reservation did with the flash-sale burst.
type SeedLockResult struct {
	Attempts int `json:"attempts"`
	// Sold is the units taken; LockRefused the attempts refused for the lock, and
	// RefusedWithStock those of them refused before the last unit was sold; SoldOut those
	// told there was not enough stock.
	Sold             int     `json:"sold"`
	LockRefused      int     `json:"lock_refused"`
	RefusedWithStock int     `json:"refused_with_stock"`
	SoldOut          int     `json:"sold_out"`
	Errors           int     `json:"errors"`
	PerS             float64 `json:"per_s"`
	// Remaining is the stock left at the end; Quantity - Remaining must equal Sold.
	Remaining int `json:"remaining"`
}

// runSeedLock offers quantity units through the seed's lock to attempts one-unit attempts,
// concurrency at a time: the flash-sale burst's buyers, straight to Redis.
func runSeedLock(ctx context.Context, client goredis.UniversalClient, prefix string, attempts, concurrency, quantity int) (SeedLockResult, error) {
	inv := NewSeedLock(client, prefix)
	const product = "seed-lock-product"
	if err := inv.Init(ctx, product, quantity); err != nil {
		return SeedLockResult{}, fmt.Errorf("seed lock: init: %w", err)
	}
	defer client.Del(context.WithoutCancel(ctx), inv.stockKey(product), inv.lockKey(product))
	var sold, refused, soldOut, failed, lastSale atomic.Int64
	refusedAt := make([]int64, attempts) // unix nanoseconds of each lock refusal; 0 for none
	start := time.Now()
	loadgen.ForEach(ctx, attempts, concurrency, func(i int) {
		ok, _, err := inv.Reserve(ctx, product, 1)
		switch {
		case errors.Is(err, ErrLockNotAcquired):
			refused.Add(1)
			refusedAt[i] = time.Now().UnixNano()
		case err != nil:
			failed.Add(1)
		case ok:
			sold.Add(1)
			storeMax(&lastSale, time.Now().UnixNano())
		default:
			soldOut.Add(1)
		}
	})
	elapsed := time.Since(start)
	withStock := 0
	for _, at := range refusedAt {
		if at != 0 && (at < lastSale.Load() || sold.Load() < int64(quantity)) {
			withStock++
		}
	}
	if err := ctx.Err(); err != nil {
		return SeedLockResult{}, err
	}
	left, err := inv.Remaining(ctx, product)
	if err != nil {
		return SeedLockResult{}, fmt.Errorf("seed lock: remaining: %w", err)
	}
	return SeedLockResult{
		Attempts: attempts, Sold: int(sold.Load()), LockRefused: int(refused.Load()), RefusedWithStock: withStock,
		SoldOut: int(soldOut.Load()), Errors: int(failed.Load()), PerS: perSecond(attempts, elapsed), Remaining: left,
	}, nil
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

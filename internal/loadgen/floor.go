package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// floorTimeout bounds one request of Floor.
const floorTimeout = 10 * time.Second

// Floor fires count `{ __typename }` queries at url, concurrency at a time, over one pooled
// client warmed first, and returns their rate and latency percentiles in milliseconds: the
// cost of the HTTP and GraphQL layers alone, the baseline the flash-sale burst is compared
// to. The queries are sent in shapes, in turn (none: Plain). Any failed query fails the
// measurement.
func Floor(ctx context.Context, url string, concurrency, count int, shapes ...Shape) (perSec, p50ms, p99ms float64, err error) {
	if concurrency < 1 || count < 1 {
		return 0, 0, 0, fmt.Errorf("floor: concurrency and count must be at least 1")
	}
	c, err := NewClient(url, concurrency, floorTimeout)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	return floor(ctx, c.Shaped(shapes), concurrency, count)
}

// floor is Floor over existing clients, query i sent by clients[i mod len(clients)].
func floor(ctx context.Context, clients []*Client, concurrency, count int) (perSec, p50ms, p99ms float64, err error) {
	warm(ctx, clients[0], concurrency)
	lat := make([]time.Duration, count)
	var (
		failed   atomic.Int64
		firstErr error
		once     sync.Once
	)
	start := time.Now()
	ForEach(ctx, count, concurrency, func(i int) {
		t0 := time.Now()
		err := clients[i%len(clients)].Do(ctx, "", typenameQuery, nil, nil)
		lat[i] = time.Since(t0)
		if err != nil {
			failed.Add(1)
			once.Do(func() { firstErr = err })
		}
	})
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("floor: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return 0, 0, 0, fmt.Errorf("floor: %d of %d queries failed, first: %w", n, count, firstErr)
	}
	slices.Sort(lat)
	return perSecond(count, elapsed), ms(percentile(lat, 50)), ms(percentile(lat, 99)), nil
}

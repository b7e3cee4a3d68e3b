package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

// CacheResult is product reads per second through GraphQL with the shop's caches, with the
// stores' cache alone (Redis and local copies, no response cache: app.Options.NoResponseCache)
// and with no cache at all (app.Options.NoCache): APIs of the same process on the same data.
type CacheResult struct {
	// RequestShapes names how the reads and their floor were sent (loadgen.Describe): as
	// the frontend clients send them, read by read in turn.
	RequestShapes string `json:"request_shapes"`
	Products      int    `json:"products"`
	Reads         int    `json:"reads"`
	Concurrency   int    `json:"concurrency"`
	// Each figure is the better of cacheRounds rounds, the rounds alternating between the
	// sides so that none gets the quieter moments of the machine.
	CachedPerS      float64 `json:"cached_per_s"`
	UncachedPerS    float64 `json:"uncached_per_s"`
	CachedP50Ms     float64 `json:"cached_p50_ms"`
	CachedP99Ms     float64 `json:"cached_p99_ms"`
	UncachedP50Ms   float64 `json:"uncached_p50_ms"`
	UncachedP99Ms   float64 `json:"uncached_p99_ms"`
	UncachedSkipped string  `json:"uncached_skipped,omitempty"`
	// StoresOnlyPerS is the read with the stores' cache but every request executed by
	// GraphQL: what the response cache adds is CachedPerS over it.
	StoresOnlyPerS  float64 `json:"stores_cache_only_per_s,omitempty"`
	StoresOnlyP50Ms float64 `json:"stores_cache_only_p50_ms,omitempty"`
	StoresOnlyP99Ms float64 `json:"stores_cache_only_p99_ms,omitempty"`
	// FloorPerS is { __typename } against the cached API at the same concurrency: the cost of
	// HTTP and of running GraphQL at all. A cached response skips the second, so the cached read
	// can beat it.
	FloorPerS float64 `json:"floor_per_s"`
}

// cacheSide is one API the product reads are measured against.
type cacheSide struct {
	name, url string
	got       *readRate
}

// productQuery reads the product row only: stock is the live count from the Redis pool,
// the same with or without the cache.
const productQuery = `query($id: ID!) { product(id: $id) { id name description priceCents } }`

// cacheRounds is how many times each side is measured.
const cacheRounds = 2

// readRate is one measurement of product reads.
type readRate struct {
	perS, p50, p99 float64
}

// runCache creates cfg.CacheProducts products through s, then reads them round-robin,
// cfg.CacheReads reads at cfg.CacheConcurrency, against cachedURL, storesOnlyURL and
// uncachedURL ("" to skip that side). Before each measurement it calls settle (nil:
// nothing), which lets the other sides give their database connections back.
func runCache(ctx context.Context, cfg Config, s *shop, cachedURL, storesOnlyURL, uncachedURL string, settle func(), progress io.Writer) (*CacheResult, error) {
	ids := make([]string, cfg.CacheProducts)
	for i := range ids {
		id, err := s.createProduct(ctx, fmt.Sprintf("Cached product %d of %s", i, s.runID), 1000)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	r := &CacheResult{Products: len(ids), Reads: cfg.CacheReads, Concurrency: cfg.CacheConcurrency,
		RequestShapes: loadgen.Describe(loadgen.DefaultShapes)}
	measure := func(url string) (readRate, error) {
		if settle != nil {
			settle()
		}
		c, err := loadgen.NewClient(url, cfg.CacheConcurrency, requestTimeout)
		if err != nil {
			return readRate{}, err
		}
		defer c.Close()
		// Warm: open the connections and fill the caches (every side pays for it alike).
		if _, err := readProducts(ctx, c, ids, len(ids)+cfg.CacheConcurrency, cfg.CacheConcurrency); err != nil {
			return readRate{}, err
		}
		return readProducts(ctx, c, ids, cfg.CacheReads, cfg.CacheConcurrency)
	}
	var cached, storesOnly, uncached readRate
	sides := []cacheSide{{"cached", cachedURL, &cached}, {"stores' cache only", storesOnlyURL, &storesOnly},
		{"uncached", uncachedURL, &uncached}}
	for round := range cacheRounds {
		for _, side := range sides {
			if side.url == "" {
				continue
			}
			rr, err := retry(ctx, progress, "cache: product reads", func() (readRate, error) { return measure(side.url) })
			if err != nil {
				return r, fmt.Errorf("product reads from %s: %w", side.url, err)
			}
			fmt.Fprintf(progress, "cache: round %d, %s: %.0f reads/s (p50 %.2f ms, p99 %.2f ms)\n",
				round+1, side.name, rr.perS, rr.p50, rr.p99)
			if rr.perS > side.got.perS {
				*side.got = rr
			}
		}
	}
	floor, _, _, err := loadgen.Floor(ctx, cachedURL, cfg.CacheConcurrency, cfg.CacheReads, loadgen.DefaultShapes...)
	if err != nil {
		return r, fmt.Errorf("floor at concurrency %d: %w", cfg.CacheConcurrency, err)
	}
	r.FloorPerS = floor
	r.CachedPerS, r.CachedP50Ms, r.CachedP99Ms = cached.perS, cached.p50, cached.p99
	r.StoresOnlyPerS, r.StoresOnlyP50Ms, r.StoresOnlyP99Ms = storesOnly.perS, storesOnly.p50, storesOnly.p99
	r.UncachedPerS, r.UncachedP50Ms, r.UncachedP99Ms = uncached.perS, uncached.p50, uncached.p99
	return r, nil
}

// readProducts makes n product reads, concurrency at a time, read i of ids[i mod len(ids)],
// each in the next of loadgen.DefaultShapes: a product page's reads come from Apollo Client
// (POST) and urql (GET) alike. Any failed read fails the measurement.
func readProducts(ctx context.Context, c *loadgen.Client, ids []string, n, concurrency int) (readRate, error) {
	clients := c.Shaped(loadgen.DefaultShapes)
	lat := make(latencies, n)
	var failed atomic.Int64
	var once sync.Once
	var firstErr error
	start := time.Now()
	loadgen.ForEach(ctx, n, concurrency, func(i int) {
		var out struct {
			Product *struct {
				ID string `json:"id"`
			} `json:"product"`
		}
		t0 := time.Now()
		err := clients[i%len(clients)].Do(ctx, "", productQuery, map[string]any{"id": ids[i%len(ids)]}, &out)
		lat[i] = time.Since(t0)
		if err == nil && (out.Product == nil || out.Product.ID != ids[i%len(ids)]) {
			err = fmt.Errorf("product(%s) answered %+v", ids[i%len(ids)], out.Product)
		}
		if err != nil {
			failed.Add(1)
			once.Do(func() { firstErr = err })
		}
	})
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return readRate{}, err
	}
	if n := failed.Load(); n > 0 {
		return readRate{}, fmt.Errorf("%d reads failed, first: %w", n, firstErr)
	}
	return readRate{perS: perSecond(n, elapsed), p50: lat.percentileMs(50), p99: lat.percentileMs(99)}, nil
}

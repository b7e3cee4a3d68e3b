// Package bench is the benchmark suite of `make bench` (cmd/bench). Absolute times drift on
// shared machines, so every figure is measured beside a baseline from the same run and
// reported as a ratio to it:
//
//   - the flash-sale burst (internal/loadgen) beside the floor ({ __typename } against the
//     same server at the same concurrency), the ceiling (the Lua reservation called directly,
//     no HTTP in front) and the seed's lock-then-GET-then-DECRBY reservation;
//   - product reads through GraphQL with the Redis cache and without it;
//   - PostgreSQL statements of a nested query with dataloaders and with batching off;
//   - live stock subscribers one API process holds, and the delay of the final 0;
//   - orders charged per second by one and by two payment workers;
//   - the CPU a RATE_LIMITED refusal and each abuse probe cost, beside the floor's;
//   - the flash sale again with the API, the relay and each worker a process of their own,
//     as deployed (Processes), beside the in-process figures.
//
// By default the suite starts the whole stack in this process (Stack); given the URL of a
// running `make run` it measures that instead and skips what needs in-process access.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/app"
)

// The benchmarks, by the names Config.Only takes.
const (
	BenchFlashSale     = "flashsale"
	BenchCache         = "cache"
	BenchLoaders       = "loaders"
	BenchSubscriptions = "subscriptions"
	BenchDrain         = "drain"
	BenchRefusals      = "refusals"
	BenchProcesses     = "processes"
)

// All lists every benchmark in the order they run.
var All = []string{BenchFlashSale, BenchCache, BenchLoaders, BenchSubscriptions, BenchDrain, BenchRefusals, BenchProcesses}

// Config sizes the suite. DefaultConfig has the sizes.
type Config struct {
	// URL is a running stack to measure; empty starts one in this process.
	URL string
	// Services supplies the addresses of PostgreSQL, Redis and RabbitMQ (and the admin
	// account of a running stack): app.ConfigFromEnv.
	Services app.Config
	// AdminEmail and AdminPassword log in to the stack under test.
	AdminEmail, AdminPassword string

	// The flash sale: Buyers make Attempts at Concurrency on Quantity units, one per buyer,
	// in each of FlashRounds sales.
	Buyers, Attempts, Concurrency, Quantity, FlashRounds int
	// The cache: CacheReads reads of CacheProducts products at CacheConcurrency.
	CacheReads, CacheConcurrency, CacheProducts int
	// The loaders: one query of LoaderOrders order(id:) lookups.
	LoaderOrders int
	// The subscriptions: Subscribers watching a sale of SubscriptionQuantity units.
	Subscribers, SubscriptionQuantity int
	// The payment drain: DrainOrders orders for each worker count.
	DrainOrders int

	// Only runs these benchmarks (names of All); empty runs them all.
	Only []string
	// ProfileDir, when set, receives a CPU profile of each benchmark, cpu-<name>.pprof; the
	// flash sale's covers its burst alone (cpu-flashsale-burst.pprof).
	ProfileDir string
	// Log is the in-process stack's logger.
	Log *slog.Logger
	// NoBurstScheduling runs the in-process stack with app.Options.NoBurstScheduling: its
	// workers never make way for the API's bursts.
	NoBurstScheduling bool
}

// DefaultConfig returns the sizes: 5,000 buyers making 20,000 attempts at
// concurrency 256 on 1,000 units.
func DefaultConfig() Config {
	return Config{
		AdminEmail: "admin@example.com", AdminPassword: "admin-password",
		Buyers: 5000, Attempts: 20000, Concurrency: 256, Quantity: 1000, FlashRounds: DefaultFlashRounds,
		CacheReads: 20000, CacheConcurrency: 64, CacheProducts: 100,
		LoaderOrders:         100,
		Subscribers:          5000,
		SubscriptionQuantity: 100,
		DrainOrders:          2000,
	}
}

func (c Config) validate() error {
	for _, name := range c.Only {
		if !slices.Contains(All, name) {
			return fmt.Errorf("unknown benchmark %q; they are %v", name, All)
		}
	}
	for _, v := range []int{c.Buyers, c.Attempts, c.Concurrency, c.Quantity, c.FlashRounds, c.CacheReads, c.CacheConcurrency,
		c.CacheProducts, c.LoaderOrders, c.Subscribers, c.SubscriptionQuantity, c.DrainOrders} {
		if v < 1 {
			return errors.New("every size must be at least 1")
		}
	}
	if c.Buyers < c.Quantity {
		return errors.New("buyers must be at least the quantity, one unit each")
	}
	return nil
}

func (c Config) runs(name string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, name) }

// Run runs the suite, writing progress to progress. A benchmark that fails is recorded in
// Results.Errors and the others still run; Run returns an error only when nothing could be
// measured at all (the stack did not start, the config is wrong, ctx ended).
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := loopbackServices(cfg); err != nil {
		return nil, err
	}
	res := &Results{
		Run: RunInfo{
			Started: time.Now().UTC().Truncate(time.Second), GoVersion: runtime.Version(),
			CPUs: runtime.NumCPU(), Mode: "in-process stack", Only: cfg.Only,
		},
		Skipped: map[string]string{}, Errors: map[string]string{},
	}
	if cfg.NoBurstScheduling {
		res.Run.Mode += " without burst scheduling"
	}
	started := time.Now()
	res.Run.LoadStart = loadAverage()
	defer func() { res.Run.DurationS, res.Run.LoadEnd = seconds(time.Since(started)), loadAverage() }()

	apiURL := cfg.URL
	var st *Stack
	if apiURL == "" {
		log := cfg.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var err error
		st, err = StartStack(startCtx, cfg.Services, app.Options{NoBurstScheduling: cfg.NoBurstScheduling}, log, progress)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("start the stack: %w", err)
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
			defer cancel()
			if err := st.Close(closeCtx); err != nil {
				fmt.Fprintf(progress, "stack: close: %v\n", err)
			}
		}()
		apiURL = st.API.URL()
		cfg.AdminEmail, cfg.AdminPassword = st.Config.AdminEmail, st.Config.AdminPassword
		res.Run.RunID = st.Config.Namespace
	} else {
		res.Run.Mode = "running stack at " + apiURL
		res.Run.RunID = "bench-" + randomHex(4)
	}
	res.Run.URL = apiURL
	runID := res.Run.RunID[len("bench-"):]

	// The Redis-only baselines need only Redis: the stack's, or REDIS_URL's for a running one.
	redisClient, err := baselineRedis(ctx, cfg.Services.RedisURL, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	defer redisClient.Close()
	if st == nil {
		defer deleteKeys(context.WithoutCancel(ctx), redisClient, res.Run.RunID)
	}

	s, err := newShop(ctx, apiURL, cfg.AdminEmail, cfg.AdminPassword, runID, 16)
	if err != nil {
		return nil, err
	}
	defer s.close()

	ran := false // whether a benchmark ran before this one, whose tail to wait out
	step := func(name string, needsStack bool, fn func() error) {
		switch {
		case !cfg.runs(name):
			return
		case ctx.Err() != nil:
			res.Errors[name] = ctx.Err().Error()
			return
		case needsStack && st == nil:
			res.Skipped[name] = "needs the in-process stack (-url given)"
			return
		}
		fmt.Fprintf(progress, "== %s\n", name)
		if ran {
			waitQuiet(ctx, progress)
		}
		ran = true
		t0 := time.Now()
		stopProfile := func() {}
		if name != BenchFlashSale {
			stopProfile = startProfile(cfg.ProfileDir, name, progress)
		}
		err := fn()
		stopProfile()
		if err != nil {
			res.Errors[name] = err.Error()
			fmt.Fprintf(progress, "%s: FAILED: %v\n", name, err)
		}
		fmt.Fprintf(progress, "== %s done in %.1f s\n", name, time.Since(t0).Seconds())
	}
	step(BenchFlashSale, false, func() (err error) {
		var local *app.API
		if st != nil {
			local = st.API
		}
		res.FlashSale, err = runFlashSale(ctx, cfg, apiURL, local, redisClient, runID, progress)
		return err
	})
	step(BenchCache, false, func() (err error) {
		storesOnly, uncached := "", ""
		var settle func()
		if st != nil {
			api, stop, err := st.startVariant(ctx, func(*app.Config) {}, app.Options{NoCache: true})
			if err != nil {
				return fmt.Errorf("start the API without the cache: %w", err)
			}
			defer stop()
			uncached = api.URL()
			stores, stopStores, err := st.startVariant(ctx, func(*app.Config) {}, app.Options{NoResponseCache: true})
			if err != nil {
				return fmt.Errorf("start the API without the response cache: %w", err)
			}
			defer stopStores()
			storesOnly = stores.URL()
			// Full pools exceed PostgreSQL's default max_connections: the side about to be
			// measured starts from no idle connections, as do the others.
			settle = func() { closeIdle(st.API, api, stores) }
		}
		res.Cache, err = runCache(ctx, cfg, s, apiURL, storesOnly, uncached, settle, progress)
		if err == nil && uncached == "" {
			res.Cache.UncachedSkipped = "needs the in-process stack (-url given)"
		}
		return err
	})
	step(BenchLoaders, true, func() (err error) {
		res.Loaders, err = runLoaders(ctx, cfg, s, st, progress)
		return err
	})
	step(BenchSubscriptions, false, func() (err error) {
		perSecond := cfg.Services.StockUpdatesPerSecond
		if st != nil {
			perSecond = st.Config.StockUpdatesPerSecond
		}
		res.Subscriptions, err = runSubscriptions(ctx, cfg, s, apiURL, perSecond, progress)
		return err
	})
	step(BenchDrain, true, func() (err error) {
		res.Drain, err = runDrain(ctx, cfg, s, st, progress)
		return err
	})
	step(BenchRefusals, true, func() (err error) {
		res.Refusals, err = runRefusals(ctx, st.API.Handler(), progress)
		return err
	})
	step(BenchProcesses, true, func() (err error) {
		res.Processes, err = runProcesses(ctx, cfg, st, progress)
		return err
	})
	return res, ctx.Err()
}

// baselineRedis connects the Redis-only baselines to redisURL with a connection for each of
// conns buyers, so that every one of them has its call in flight at once, as the burst's
// buyers each have their HTTP connection (the seed's Node client pipelined them all on one).
// With REDIS_CLUSTER_ADDRS set it connects to the cluster as the shop does.
func baselineRedis(ctx context.Context, redisURL string, conns int) (goredis.UniversalClient, error) {
	if addrs := os.Getenv("REDIS_CLUSTER_ADDRS"); addrs != "" {
		return app.OpenRedis(ctx, app.Config{RedisURL: redisURL, Redis: app.RedisSettings{ClusterAddrs: strings.Split(addrs, ",")}})
	}
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opts.PoolSize = max(conns, 64)
	client := goredis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return client, nil
}

// loopbackServices refuses services off this machine: the benchmarks load Redis directly,
// and the in-process stack every service, and a benchmark must never load a machine it does
// not own. (The API's URL is checked by the load generator's client.)
func loopbackServices(cfg Config) error {
	urls := []string{cfg.Services.RedisURL}
	if cfg.URL == "" {
		urls = append(urls, cfg.Services.RabbitMQURL)
		urls = append(urls, cfg.Services.DatabaseShards...)
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("bench: parse service url: %w", err)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("bench: %s is not on the loopback; the benchmarks only load this machine", u.Redacted())
		}
	}
	for _, addr := range strings.Split(os.Getenv("REDIS_CLUSTER_ADDRS"), ",") {
		if addr = strings.TrimSpace(addr); addr == "" {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !isLoopback(host) {
			return fmt.Errorf("bench: Redis Cluster node %q is not on the loopback; the benchmarks only load this machine", addr)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

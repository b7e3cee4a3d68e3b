package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
	"github.com/flashsale/flashsale/perf/burst"
	"github.com/flashsale/flashsale/perf/soldout"
	"github.com/flashsale/flashsale/stockfeed"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/redis"
)

// Deps are the connections and stores every binary shares.
type Deps struct {
	Config    Config
	Log       *slog.Logger
	DB        *postgres.DB
	Redis     goredis.UniversalClient
	Inventory *redis.Inventory
	SoldOut   *soldout.Watch // the sold-out fast path's memory; nil with Options.NoSoldOutFastPath
	StockBus  *redis.StockBus
	OrderBus  *redis.OrderBus
	// Attempts counts the order attempts refused from memory into their pools' counts.
	Attempts *redis.AttemptTally
	// Invalidations tell every process to drop its local copies of cached entries.
	Invalidations *redis.Invalidations
	// Stores read through the Redis cache; Raw reads PostgreSQL directly.
	Stores   flashsale.Stores
	Raw      flashsale.Stores
	Checkout *checkout.Service
	// Burst counts the API's requests in flight when the API runs in this process, so that
	// the workers here whose work can wait make way for a burst of them. Nil with
	// Options.NoBurstScheduling: then nothing waits.
	Burst *burst.Detector
	// PlacementSteps times the steps of every order placed here (the API registers it).
	PlacementSteps *prometheus.HistogramVec
	// Registry holds the process's metrics, served on the API's or the worker's /metrics.
	Registry *prometheus.Registry
	// brokers are the broker connections of the workers running here, for their /readyz.
	brokers brokerLinks
	// Repairs counts the stock pools' repairs made here, by kind (the API and the workers'
	// ops server register it).
	Repairs *prometheus.CounterVec
	// Tracer traces requests, statements, commands and messages (tracing.go); nil when
	// tracing is off.
	Tracer         trace.TracerProvider
	tracerShutdown func(context.Context) error
}

// newRepairs is the counter of repairs of stock pools: a rebuild after Redis lost a pool or
// held a stale copy, a stray hold released, a quantity or count set right. Each kind starts
// at zero so that an alert on its rate sees the first one.
func newRepairs() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_reconciliation_repairs_total",
		Help: "Repairs of stock pools by kind: lost_pool, stale_pool (rebuilt from PostgreSQL), orphan_hold, finished_hold (released), quantity, stock, buyers (set right).",
	}, []string{"kind"})
	for _, kind := range checkout.RepairKinds {
		c.WithLabelValues(kind)
	}
	return c
}

// newPlacementSteps is the histogram of how long a placed order's steps took. Its buckets
// are fine between 1 and 100 ms, where a sale's orders fall, so that a benchmark can read
// their median and tail from it.
func newPlacementSteps() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "flashsale_order_placement_step_seconds",
		Help: "How long each step of a placed order took: reserve (units in Redis), record (the reservation in the ledger), write (order and event in PostgreSQL).",
		Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .02, .03, .04, .05,
			.075, .1, .15, .2, .3, .5, 1, 2},
	}, []string{"step"})
}

// observeSteps resolves each step's series once, off the order's path (and so that both are
// on /metrics before the first order).
func observeSteps(h *prometheus.HistogramVec) func(step string, took time.Duration) {
	series := map[string]prometheus.Observer{}
	for _, step := range []string{checkout.StepReserve, checkout.StepRecord, checkout.StepWrite} {
		series[step] = h.WithLabelValues(step)
	}
	return func(step string, took time.Duration) {
		if o := series[step]; o != nil {
			o.Observe(took.Seconds())
		}
	}
}

// observeOrder passes each placed order's steps to observe and tells the burst detector of
// every order written.
func (d *Deps) observeOrder(observe func(step string, took time.Duration)) func(step string, took time.Duration) {
	return func(step string, took time.Duration) {
		if step == checkout.StepWrite {
			d.Burst.OrderWritten()
		}
		observe(step, took)
	}
}

// soldOutMemory is how long a process trusts its memory that a pool sold out without hearing
// otherwise: pub/sub announces stock coming back, and this bounds the harm of a lost message.
const soldOutMemory = 2 * time.Second

// attemptsFlush is how often a process adds the attempts it refused from memory to their
// pools' counts: the sale's stats lag by at most this much behind another replica's refusals.
const attemptsFlush = time.Second

// OpenDeps connects to PostgreSQL and Redis and assembles the stores and the checkout.
// The databases must be prepared.
func OpenDeps(ctx context.Context, cfg Config, log *slog.Logger, opts Options) (_ *Deps, err error) {
	dbOpts := opts.DB
	d := &Deps{Config: cfg, Log: log, PlacementSteps: newPlacementSteps(), Registry: prometheus.NewRegistry(), Repairs: newRepairs()}
	d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), d.Repairs)
	registerBuildInfo(d.Registry)
	if !opts.NoBurstScheduling {
		d.Burst = burst.New(burst.Config{})
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if dbOpts.MaxConns == 0 {
		dbOpts.MaxConns = cfg.DatabasePoolSize
	}
	if err := d.openTracing(ctx, opts.Tracer, &dbOpts); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if d.DB, err = postgres.Open(ctx, cfg.DatabaseShards, dbOpts); err != nil {
		return nil, err
	}
	if d.Redis, err = OpenRedis(ctx, cfg); err != nil {
		return nil, err
	}
	if err := d.traceRedis(d.Redis); err != nil {
		return nil, fmt.Errorf("trace redis: %w", err)
	}
	prefix := cfg.redisPrefix()
	d.Inventory = redis.NewInventory(d.Redis, prefix)
	d.Attempts = redis.NewAttemptTally(d.Redis, prefix, attemptsFlush, log)
	busOpts := redis.StockBusOptions{Log: log}
	var soldOut *soldout.Memory
	if !opts.NoSoldOutFastPath {
		soldOut = soldout.NewMemory(soldOutMemory)
		busOpts.OnRestock = soldOut.Clear
	}
	d.StockBus = redis.NewStockBus(d.Redis, prefix, busOpts)
	d.OrderBus = redis.NewOrderBus(d.Redis, prefix, log)
	var checkoutSoldOut checkout.SoldOutMemory // nil, not a nil *soldout.Watch, when off
	if soldOut != nil {
		d.SoldOut = soldout.NewWatch(soldOut, soldOutSource{d.StockBus}, log)
		checkoutSoldOut = d.SoldOut
	}

	d.Raw = flashsale.Stores{
		Users:    postgres.NewUserStore(d.DB),
		Products: postgres.NewProductStore(d.DB),
		Sales:    postgres.NewSaleStore(d.DB),
		Orders:   postgres.NewOrderStore(d.DB),
	}
	cacheCfg := redis.CacheConfig{Prefix: prefix, NoLocalCache: opts.NoLocalCache}
	if !opts.NoCache {
		d.Invalidations = redis.NewInvalidations(d.Redis, prefix, log)
		cacheCfg.Invalidations = d.Invalidations
	}
	d.Stores = flashsale.Stores{
		Users:    redis.NewUserCache(d.Raw.Users, d.Redis, cacheCfg, log),
		Products: redis.NewProductCache(d.Raw.Products, d.Redis, cacheCfg, log),
		Sales:    redis.NewSaleCache(d.Raw.Sales, d.Redis, cacheCfg, log),
		Orders:   redis.NewOrderCache(d.Raw.Orders, d.Redis, cacheCfg, log),
	}
	if opts.NoCache {
		// The benchmarks' uncached baseline. Its writes do not invalidate the cache either,
		// so a NoCache process must not write data that cached processes read.
		d.Stores = d.Raw
	}
	d.Checkout = checkout.New(checkout.Deps{
		Sales:       d.Stores.Sales,
		Products:    d.Stores.Products,
		Orders:      d.Stores.Orders,
		Inventory:   d.Inventory,
		Ledger:      postgres.NewLedger(d.DB),
		Stock:       d.StockBus,
		SoldOut:     checkoutSoldOut,
		Attempts:    d.Attempts,
		Stats:       postgres.NewStatsStore(d.DB),
		Updates:     d.OrderBus,
		Log:         log,
		ObserveStep: d.observeOrder(observeSteps(d.PlacementSteps)),
		CountRepair: func(kind string) { d.Repairs.WithLabelValues(kind).Inc() },
	}, checkout.Config{ReservationTTL: cfg.ReservationTTL, OrphanGrace: opts.OrphanGrace})
	if opts.Clock != nil {
		d.Checkout.SetClock(opts.Clock)
	}
	return d, nil
}

// checks are the readiness checks of PostgreSQL and Redis (see readiness.go): ready while any
// shard answers, and unless Redis has failed for longer than RedisReadyGrace. Each call
// starts the grace afresh, so a server calls it once.
func (d *Deps) checks() map[string]func(context.Context) error {
	redis := &graceCheck{
		check: func(ctx context.Context) error { return pingRedis(ctx, d.Redis) }, // every node of a cluster
		grace: cmp.Or(d.Config.RedisReadyGrace, DefaultRedisReadyGrace),
		now:   time.Now,
	}
	return map[string]func(context.Context) error{
		"postgres": shardsCheck(d.DB),
		"redis":    redis.run,
	}
}

// Close closes every connection and stops the burst detector's goroutine.
func (d *Deps) Close() {
	if d.SoldOut != nil {
		d.SoldOut.Close() // before the bus its subscriptions are on
	}
	d.Burst.Close()
	if d.StockBus != nil {
		d.StockBus.Close()
	}
	if d.OrderBus != nil {
		d.OrderBus.Close()
	}
	if d.Attempts != nil {
		d.Attempts.Close() // flushes what is left, so Redis must still be open
	}
	if d.Invalidations != nil {
		d.Invalidations.Close()
	}
	if d.Redis != nil {
		d.Redis.Close()
	}
	if d.DB != nil {
		d.DB.Close()
	}
	d.closeTracing()
}

var _ flashsale.Inventory = (*redis.Inventory)(nil)

// stockSource adapts the StockBus to stockfeed.StockSource.
type stockSource struct{ bus *redis.StockBus }

func (s stockSource) SubscribeStock(ctx context.Context, pool flashsale.PoolKey) (stockfeed.Feed, error) {
	return s.bus.Subscribe(ctx, pool)
}

// soldOutSource adapts the StockBus to soldout.Subscriber.
type soldOutSource struct{ bus *redis.StockBus }

func (s soldOutSource) SubscribeStock(ctx context.Context, pool flashsale.PoolKey) (soldout.Subscription, error) {
	sub, err := s.bus.Subscribe(ctx, pool)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

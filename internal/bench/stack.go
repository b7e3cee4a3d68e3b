package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/sweeper"
)

// Stack is the whole shop in this process, assembled as cmd/devstack assembles it, on the
// benchmarks' own shard databases (flashsale_bench_shard_0..3, dropped and created afresh
// each run, so every run starts from the same empty tables) and a namespace of its own for
// Redis keys, RabbitMQ queues and the Kafka topic.
//
// The benchmarks that compare the API with a variant of itself (the cache off, batching off)
// start the variant beside it on the same data with startVariant, and stop it when done, so
// that it holds no PostgreSQL connections the rest of the time.
type Stack struct {
	Config app.Config
	// API is the shop as deployed; the workers share its connections, as in devstack.
	API      *app.API
	opts     app.Options
	brokers  []string
	embedded *kafka.Embedded
	log      *slog.Logger
	stopWork context.CancelFunc
	work     sync.WaitGroup
	payMu    sync.Mutex
	payStop  func() // the stack's own payment worker
}

// benchShardNames is the database name of shard i of the benchmark's databases.
const benchShardNames = "flashsale_bench_shard_%d"

// shardURLs returns the URLs of n benchmark shards named by names on the server (and with the
// credentials) of base.
func shardURLs(base string, n int, names string) ([]string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse shard url: %w", err)
	}
	urls := make([]string, n)
	for i := range urls {
		v := *u
		v.Path = "/" + fmt.Sprintf(names, i)
		urls[i] = v.String()
	}
	return urls, nil
}

// StartStack prepares fresh benchmark databases and brokers and starts the API and every
// worker, with opts. base supplies the services' addresses (ConfigFromEnv); the databases are
// always the benchmark's own.
func StartStack(ctx context.Context, base app.Config, opts app.Options, log *slog.Logger, progress io.Writer) (_ *Stack, err error) {
	cfg := base
	if len(base.DatabaseShards) == 0 {
		return nil, errors.New("bench: no database shard configured")
	}
	if cfg.DatabaseShards, err = shardURLs(base.DatabaseShards[0], len(base.DatabaseShards), benchShardNames); err != nil {
		return nil, err
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Namespace = "bench-" + randomHex(4)
	cfg.BcryptCost = 4 // registering thousands of buyers is otherwise all bcrypt
	cfg.JWTSecret = randomHex(32)

	s := &Stack{Config: cfg, opts: opts, log: log}
	defer func() {
		if err != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
			defer cancel()
			s.Close(shutdownCtx)
		}
	}()
	fmt.Fprintf(progress, "stack: fresh databases %s, namespace %s\n", fmt.Sprintf(benchShardNames, 0)+"..", cfg.Namespace)
	if err := postgres.DropDatabases(ctx, cfg.DatabaseShards); err != nil {
		return nil, fmt.Errorf("drop benchmark databases: %w", err)
	}
	if err := app.Prepare(ctx, cfg); err != nil {
		return nil, fmt.Errorf("prepare benchmark databases: %w", err)
	}
	s.brokers = cfg.KafkaBrokers
	if len(s.brokers) == 0 {
		if s.embedded, err = kafka.StartEmbedded(ctx, log); err != nil {
			return nil, err
		}
		s.brokers = s.embedded.Brokers()
	}
	if err := app.PrepareBrokers(ctx, cfg, s.brokers); err != nil {
		return nil, err
	}

	if s.API, err = app.NewAPI(ctx, cfg, log, opts); err != nil {
		return nil, err
	}
	if err := s.API.Start(); err != nil {
		return nil, err
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	s.stopWork = stopWork
	d := s.API.Deps
	s.work.Go(func() { app.RunRelays(workCtx, d, s.brokers) })
	s.work.Go(func() { app.RunSweeper(workCtx, d, sweeper.Config{}) })
	s.work.Go(func() { s.logErr("notifications", app.RunNotifications(workCtx, d)) })
	s.work.Go(func() { s.logErr("analytics", app.RunAnalytics(workCtx, d, s.brokers)) })
	s.payStop = s.startPayments(1)
	fmt.Fprintf(progress, "stack: API on %s; relays, sweeper, payments, notifications and analytics running\n", s.API.URL())
	return s, nil
}

// startVariant starts another API on the stack's data with the config changed by change,
// and opts (a mechanism turned off, its statements traced) besides the stack's own switches.
// stop shuts it down.
//
// It first closes the stack API's idle PostgreSQL connections (they reopen on demand): at
// DATABASE_POOL_SIZE connections per shard, two processes' pools can exceed PostgreSQL's
// max_connections (100 by default), and the variant would meet "too many clients".
func (s *Stack) startVariant(ctx context.Context, change func(*app.Config), opts app.Options) (api *app.API, stop func(), err error) {
	closeIdle(s.API)
	cfg := s.Config
	change(&cfg)
	opts.NoBurstScheduling = opts.NoBurstScheduling || s.opts.NoBurstScheduling
	if api, err = app.NewAPI(ctx, cfg, s.log, opts); err != nil {
		return nil, nil, err
	}
	if err := api.Start(); err != nil {
		api.Close()
		return nil, nil, err
	}
	return api, func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), app.ShutdownTimeout)
		defer cancel()
		if err := api.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("stop a variant API", "err", err)
		}
	}, nil
}

// closeIdle closes the APIs' PostgreSQL connections (those in use once they are returned);
// pgx opens new ones on demand.
func closeIdle(apis ...*app.API) {
	for _, api := range apis {
		for shard := range api.DB.Shards() {
			api.DB.Pool(shard).Reset()
		}
	}
}

func (s *Stack) logErr(worker string, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("worker stopped", "worker", worker, "err", err)
	}
}

// startPayments runs n payment workers (each app.RunPayments with its default concurrency)
// until stop is called, which waits for them.
func (s *Stack) startPayments(n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { s.logErr("payments", app.RunPayments(ctx, s.API.Deps, app.PaymentsConfig{})) })
	}
	return sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
}

// stopPayments stops the stack's own payment worker, until resumePayments.
func (s *Stack) stopPayments() {
	s.payMu.Lock()
	defer s.payMu.Unlock()
	if s.payStop != nil {
		s.payStop()
		s.payStop = nil
	}
}

// resumePayments starts the stack's own payment worker again.
func (s *Stack) resumePayments() {
	s.payMu.Lock()
	defer s.payMu.Unlock()
	if s.payStop == nil {
		s.payStop = s.startPayments(1)
	}
}

// Close stops the APIs, then the workers, closes every connection, and deletes the run's
// Redis keys and RabbitMQ queues. The databases stay for inspection until the next run.
func (s *Stack) Close(ctx context.Context) error {
	var errs []error
	if s.API != nil {
		errs = append(errs, s.API.StopServing(ctx))
	}
	s.stopPayments()
	if s.stopWork != nil {
		s.stopWork()
	}
	s.work.Wait()
	if s.API != nil {
		errs = append(errs, deleteKeys(ctx, s.API.Redis, s.Config.Namespace))
		errs = append(errs, rabbitmq.Delete(ctx, s.Config.RabbitMQURL, s.Config.Topology()))
	}
	if s.API != nil {
		s.API.Close()
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
	return errors.Join(errs...)
}

// deleteKeys deletes every Redis key of the namespace: pools are "<ns>:{...}" and cache
// entries "{<ns>:cache:...}", so every key contains "<ns>:".
func deleteKeys(ctx context.Context, client goredis.UniversalClient, namespace string) error {
	if namespace == "" {
		return errors.New("refusing to delete the keys of the empty namespace")
	}
	var cursor uint64
	for range 100_000 { // bounded: 100,000 steps of 1,000 keys
		keys, next, err := client.Scan(ctx, cursor, "*"+namespace+":*", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan keys of %s: %w", namespace, err)
		}
		if len(keys) > 0 {
			if err := client.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("delete keys of %s: %w", namespace, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
	return fmt.Errorf("delete keys of %s: too many", namespace)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// statementCounter counts the statements pgx sends to each shard (the idea of
// internal/apitest.StatementCounter, without keeping their text).
type statementCounter struct {
	shards []atomic.Int64
}

func newStatementCounter(shards int) *statementCounter {
	return &statementCounter{shards: make([]atomic.Int64, shards)}
}

// tracer is what postgres.Options.Tracer wants.
func (c *statementCounter) tracer(shard int) pgx.QueryTracer { return shardTracer{c: c, shard: shard} }

// reset zeroes every count.
func (c *statementCounter) reset() {
	for i := range c.shards {
		c.shards[i].Store(0)
	}
}

// counts returns the statements per shard since the last reset.
func (c *statementCounter) counts() []int {
	out := make([]int, len(c.shards))
	for i := range c.shards {
		out[i] = int(c.shards[i].Load())
	}
	return out
}

type shardTracer struct {
	c     *statementCounter
	shard int
}

func (t shardTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.c.shards[t.shard].Add(1)
	return ctx
}

func (shardTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

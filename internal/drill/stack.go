package drill

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/sweeper"
)

// The worker loops a Stack runs, by name.
const (
	Relays        = "relays"
	Payments      = "payments"
	Notifications = "notifications"
	Analytics     = "analytics"
	Sweeper       = "sweeper"
)

// Options shape a drill's stack. Each function may be nil.
type Options struct {
	// Config changes the settings of the API and the workers alike, such as the Redis they use.
	Config func(*app.Config)
	// API changes the first API's settings only (a proxy between it and a dependency).
	API func(*app.Config)
	// Workers changes the worker process's settings only.
	Workers func(*app.Config)
}

// Stack is the shop as its separate processes run it: an API, and a worker process with
// connections of its own running the outbox relays, the payment, notification and analytics
// workers and the sweeper, with an embedded Kafka broker that keeps its data on disk so that
// it can be restarted. Any part may be stopped and another started in its place.
type Stack struct {
	t     *testing.T
	first *apitest.Server
	apis  atomic.Pointer[[]*apitest.Server] // the replicas buyers are sent to
	next  atomic.Uint64                     // round robin over apis
	base  app.Config                        // the settings before Options.API and Options.Workers
	// Workers are the worker process's connections; drills read PostgreSQL and Redis through
	// them.
	Workers *app.Deps
	log     *slog.Logger

	brokerMu   sync.Mutex
	broker     *kafka.Embedded
	brokerPort int
	brokerDir  string

	procsMu sync.Mutex
	procs   map[string]*proc
}

type proc struct {
	stop context.CancelFunc
	done chan struct{}
}

// Shards is the number of shards of a drill's stack: two keep a drill's connections few
// while orders still spread over more than one database.
const Shards = 2

// OrphanGrace is how old a hold without an order must be before the stack's reconciliation
// returns it: above the order write's timeout, as the checkout requires, and short enough
// for the units a crash left held to come back within a drill.
const OrphanGrace = 5 * time.Second

// ReconcileEvery is the stack's sweeper's reconciliation interval.
const ReconcileEvery = time.Second

// StartStack starts a stack for t on fresh shards; everything stops when t ends.
func StartStack(t *testing.T, o Options) *Stack {
	t.Helper()
	s := &Stack{t: t, procs: map[string]*proc{}}
	s.first = apitest.Start(t, apitest.WithShards(Shards), apitest.WithOptions(func(opts *app.Options) {
		opts.OrphanGrace = OrphanGrace
	}), apitest.WithConfig(func(c *app.Config) {
		if o.Config != nil {
			o.Config(c)
		}
		s.base = *c
		s.base.DatabaseShards = slices.Clone(c.DatabaseShards) // Options.API may rewrite c's
		if o.API != nil {
			o.API(c)
		}
	}))
	s.apis.Store(&[]*apitest.Server{s.first})
	s.log = s.first.API.Log.With("process", "workers")

	s.brokerPort = testenv.FreePort(t)
	s.brokerDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.startBroker(ctx); err != nil {
		t.Fatalf("drill: %v", err)
	}
	// Cleanups run last in, first out: the workers stop, then their connections close, then
	// the topology goes and the broker stops; the API (registered by apitest) goes last.
	t.Cleanup(func() {
		s.brokerMu.Lock()
		defer s.brokerMu.Unlock()
		if s.broker != nil {
			s.broker.Close()
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rabbitmq.Delete(ctx, s.base.RabbitMQURL, s.base.Topology()); err != nil {
			t.Errorf("drill: delete the RabbitMQ topology: %v", err)
		}
	})
	if err := app.PrepareBrokers(ctx, s.base, s.brokers()); err != nil {
		t.Fatalf("drill: prepare the brokers: %v", err)
	}

	wcfg := s.base
	if o.Workers != nil {
		o.Workers(&wcfg)
	}
	deps, err := app.OpenDeps(ctx, wcfg, s.log, app.Options{DB: postgres.Options{MaxConns: testenv.PoolSize}, OrphanGrace: OrphanGrace})
	if err != nil {
		t.Fatalf("drill: open the worker process's connections: %v", err)
	}
	s.Workers = deps
	t.Cleanup(deps.Close)
	for _, name := range []string{Relays, Payments, Notifications, Analytics, Sweeper} {
		s.StartWorker(name, nil)
	}
	t.Cleanup(func() {
		for _, name := range []string{Relays, Payments, Notifications, Analytics, Sweeper} {
			s.StopWorker(name)
		}
	})
	return s
}

// API is the API buyers are sent to now (the first, when replicas share them).
func (s *Stack) API() *apitest.Server { return (*s.apis.Load())[0] }

// url is the base URL of the replica the next request goes to, in turn, as a load balancer
// would pick.
func (s *Stack) url() string {
	apis := *s.apis.Load()
	return apis[s.next.Add(1)%uint64(len(apis))].URL
}

// Base returns the settings shared by the API and the workers, before Options.API and
// Options.Workers changed them: what a replacement process connects to directly.
func (s *Stack) Base() app.Config { return s.base }

// ReplaceAPI starts another API on the same shards, Redis, namespace and secret, with the
// first API's settings changed by opts, and sends every buyer to it from now on. The API it
// replaces is left as it is: a drill stops it (Abort) before or after, as its fault needs.
func (s *Stack) ReplaceAPI(opts ...apitest.Option) *apitest.Server {
	s.t.Helper()
	next := apitest.StartReplica(s.t, s.first, opts...)
	s.apis.Store(&[]*apitest.Server{next})
	return next
}

// AddReplica starts another API as ReplaceAPI does, and shares the buyers between it and the
// replicas serving already.
func (s *Stack) AddReplica(opts ...apitest.Option) *apitest.Server {
	s.t.Helper()
	next := apitest.StartReplica(s.t, s.first, opts...)
	apis := append(append([]*apitest.Server(nil), *s.apis.Load()...), next)
	s.apis.Store(&apis)
	return next
}

// StartWorker starts the named worker loop in the worker process, or, when configure is not
// nil, in a process of its own with the worker process's settings changed by configure: its
// own connections, as a separately deployed worker has. It runs until StopWorker or the end
// of the test.
func (s *Stack) StartWorker(name string, configure func(*app.Config)) {
	s.procsMu.Lock()
	defer s.procsMu.Unlock()
	if s.procs[name] != nil {
		s.t.Errorf("drill: worker %s is running already", name)
		return
	}
	d := s.Workers
	var own *app.Deps // closed when the worker stops
	if configure != nil {
		cfg := d.Config
		configure(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if own, err = app.OpenDeps(ctx, cfg, s.log.With("worker", name), app.Options{DB: postgres.Options{MaxConns: testenv.PoolSize}, OrphanGrace: OrphanGrace}); err != nil {
			s.t.Errorf("drill: open the %s worker's connections: %v", name, err)
			return
		}
		d = own
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &proc{stop: stop, done: make(chan struct{})}
	s.procs[name] = p
	report := func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			s.t.Errorf("drill: the %s worker stopped: %v", name, err)
		}
	}
	brokers := s.brokers()
	go func() {
		defer close(p.done)
		if own != nil {
			defer own.Close()
		}
		switch name {
		case Relays:
			app.RunRelays(ctx, d, brokers)
		case Payments:
			report(app.RunPayments(ctx, d, app.PaymentsConfig{}))
		case Notifications:
			report(app.RunNotifications(ctx, d))
		case Analytics:
			report(app.RunAnalytics(ctx, d, brokers))
		case Sweeper:
			app.RunSweeper(ctx, d, sweeper.Config{ReconcileEvery: ReconcileEvery})
		default:
			s.t.Errorf("drill: no worker is named %q", name)
		}
	}()
}

// StopWorker stops the named worker loop and waits for it (a no-op if it is not running).
func (s *Stack) StopWorker(name string) {
	s.procsMu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.procsMu.Unlock()
	if p != nil {
		p.stop()
		<-p.done
	}
}

func (s *Stack) brokers() []string {
	s.brokerMu.Lock()
	defer s.brokerMu.Unlock()
	return s.broker.Brokers()
}

func (s *Stack) startBroker(ctx context.Context) error {
	b, err := kafka.StartEmbeddedWith(ctx, s.log, kafka.EmbeddedOptions{Port: s.brokerPort, DataDir: s.brokerDir})
	if err != nil {
		return err
	}
	s.brokerMu.Lock()
	s.broker = b
	s.brokerMu.Unlock()
	return nil
}

// RestartBroker stops the Kafka broker, waits down, and starts it again on the same port
// with the data it kept on disk, as a broker restarted by its operator would come back.
func (s *Stack) RestartBroker(ctx context.Context, down time.Duration) error {
	s.brokerMu.Lock()
	b := s.broker // its address stays known while it is down: the restart reuses it
	s.brokerMu.Unlock()
	b.Close()
	if !sleep(ctx, down) {
		return ctx.Err()
	}
	return s.startBroker(ctx)
}

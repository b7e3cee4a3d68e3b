package apitest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/sweeper"
)

// StartStack starts what Start does plus everything behind the API, as `make run` does: an
// embedded Kafka-protocol broker, the RabbitMQ topology and Kafka topic of the server's own
// namespace, the outbox relays, and the payment, notification, analytics, sweeper and pruner workers,
// all sharing the API's connections. Orders placed through it get paid, notified and counted.
//
// When the test ends the workers stop first and are waited for, then the broker stops and the
// namespace's RabbitMQ exchange and queues are deleted; the API shuts down after that.
func StartStack(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := Start(t, opts...)
	log := s.API.Log

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	broker, err := kafka.StartEmbedded(ctx, log)
	if err != nil {
		t.Fatalf("apitest: start the embedded Kafka broker: %v", err)
	}
	brokers := broker.Brokers()
	// Cleanups run last in, first out, and Start registered the API's shutdown first: so the
	// workers stop (registered last), then the topology goes, then the broker, then the API.
	t.Cleanup(broker.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rabbitmq.Delete(ctx, s.Config.RabbitMQURL, s.Config.Topology()); err != nil {
			t.Errorf("apitest: delete the RabbitMQ topology: %v", err)
		}
	})
	if err := app.PrepareBrokers(ctx, s.Config, brokers); err != nil {
		t.Fatalf("apitest: prepare the brokers: %v", err)
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	d := s.API.Deps
	// A worker that gives up while the test runs is a failure: the test would otherwise only
	// see orders that never get paid.
	report := func(name string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) && workCtx.Err() == nil {
			t.Errorf("apitest: the %s worker stopped: %v", name, err)
		}
	}
	wg.Go(func() { app.RunRelays(workCtx, d, brokers) })
	wg.Go(func() { report("payments", app.RunPayments(workCtx, d, app.PaymentsConfig{})) })
	wg.Go(func() { report("notifications", app.RunNotifications(workCtx, d)) })
	wg.Go(func() { report("analytics", app.RunAnalytics(workCtx, d, brokers)) })
	wg.Go(func() { app.RunSweeper(workCtx, d, sweeper.Config{}) })
	wg.Go(func() { app.RunPruner(workCtx, d) })
	t.Cleanup(func() {
		stopWork()
		wg.Wait()
	})
	log.Info("test stack running", slog.Any("kafka_brokers", brokers), slog.String("namespace", s.Config.Namespace))
	return s
}

// StartReplica starts a second API process beside first: the same shards, Redis, brokers,
// namespace and JWT secret, on a port of its own, as a second replica behind a load balancer
// would be. Tokens of one work on the other; fan-out tests subscribe on one and buy on the
// other. It shuts down when the test ends, before first does. It keeps first's OrphanGrace;
// WithConfig and WithOptions change its config and options alone (pointing it at a proxy of
// Redis, a clock of its own); other options are ignored.
func StartReplica(t testing.TB, first *Server, opts ...Option) *Server {
	t.Helper()
	cfg := first.Config
	cfg.HTTPAddr = "127.0.0.1:0"
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for _, f := range o.configure {
		f(&cfg)
	}
	appOpts := app.Options{OrphanGrace: first.Options.OrphanGrace}
	for _, f := range o.options {
		f(&appOpts)
	}
	logs := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api, err := app.NewAPI(ctx, cfg, slog.New(logs), appOpts)
	if err != nil {
		t.Fatalf("apitest: start the replica API: %v", err)
	}
	if err := api.Start(); err != nil {
		api.Shutdown(ctx)
		t.Fatalf("apitest: start the replica API: %v", err)
	}
	s := &Server{URL: api.URL(), API: api, Config: cfg, Options: appOpts, logs: logs, client: newClient()}
	t.Cleanup(func() {
		s.client.close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := api.Shutdown(ctx); err != nil {
			t.Errorf("apitest: shut the replica API down: %v", err)
		}
		logs.stop()
		if panics := logs.matching("panic"); len(panics) > 0 {
			t.Errorf("apitest: the replica API logged %d panic(s):\n%s", len(panics), shorten(panics[0]))
		}
	})
	return s
}

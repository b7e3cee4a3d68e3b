package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
)

// WorkerPoolSize is a worker binary's connections per shard when DATABASE_POOL_SIZE is unset:
// what its work keeps busy, far fewer than the API's 16, so that the workers' replicas take
// little of PostgreSQL's max_connections (the README's connection budget). The payment worker
// reads, charges and marks orders paid with 128 charges in flight; the relay holds a claim per
// broker on each shard beside the sweeper's and the pruner's statements; notifications and
// analytics write in batches.
func WorkerPoolSize(name string) int {
	switch name {
	case "payments":
		return 8
	case "relay", "notifications":
		return 4
	case "analytics":
		return 2
	}
	return 4
}

// WorkerMain is the whole main of a worker binary: settings from the environment, the shared
// connections, an ops endpoint on WORKER_HTTP_ADDR (default :8081), and run until SIGINT or
// SIGTERM, after which it waits for the work in flight.
func WorkerMain(name string, run func(ctx context.Context, d *Deps) error) {
	log := NewLogger().With("worker", name)
	if err := workerMain(log, name, run); err != nil {
		log.Error("worker stopped", "err", err)
		os.Exit(1)
	}
}

func workerMain(log *slog.Logger, name string, run func(ctx context.Context, d *Deps) error) error {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	// A worker listens on WORKER_HTTP_ADDR, never on the API's HTTP_ADDR: the config it logs
	// says so, rather than the API's default.
	cfg.HTTPAddr = env("WORKER_HTTP_ADDR", ":8081")
	if os.Getenv("DATABASE_POOL_SIZE") == "" {
		cfg.DatabasePoolSize = WorkerPoolSize(name)
	}
	log.Info("starting", "config", cfg)
	ctx, stop := SignalContext()
	defer stop()
	d, err := OpenDeps(ctx, cfg, log, Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	var wg sync.WaitGroup
	var opsErr error
	wg.Go(func() { opsErr = ServeOps(ctx, cfg.HTTPAddr, d, nil) })
	err = run(ctx, d)
	stop()
	wg.Wait()
	return errors.Join(err, opsErr)
}

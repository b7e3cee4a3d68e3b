package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"

	"github.com/flashsale/flashsale/stores/postgres"
)

// WorkerMain is the whole main of a worker binary: settings from the environment, the shared
// connections, an ops endpoint on WORKER_HTTP_ADDR (default :8081), and run until SIGINT or
// SIGTERM, after which it waits for the work in flight.
func WorkerMain(name string, run func(ctx context.Context, d *Deps) error) {
	log := NewLogger().With("worker", name)
	if err := workerMain(log, run); err != nil {
		log.Error("worker stopped", "err", err)
		os.Exit(1)
	}
}

func workerMain(log *slog.Logger, run func(ctx context.Context, d *Deps) error) error {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	// A worker listens on WORKER_HTTP_ADDR, never on the API's HTTP_ADDR: the config it logs
	// says so, rather than the API's default.
	cfg.HTTPAddr = env("WORKER_HTTP_ADDR", ":8081")
	log.Info("starting", "config", cfg)
	ctx, stop := SignalContext()
	defer stop()
	d, err := OpenDeps(ctx, cfg, log, postgres.Options{})
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

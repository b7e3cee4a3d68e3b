// Command devstack is `make run`: on one machine it prepares the shard databases, seeds the
// admin and demo data, and runs the API and every worker in one process until Ctrl-C, which
// stops them all cleanly. In production each of those runs as its own binary (cmd/api,
// cmd/*-worker), scaled on its own.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/stores/postgres"
)

func main() {
	log := app.NewLogger()
	if err := run(log); err != nil {
		log.Error("devstack stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	log.Info("starting devstack", "config", cfg)
	ctx, stop := app.SignalContext()
	defer stop()
	if err := app.Prepare(ctx, cfg); err != nil {
		return fmt.Errorf("prepare databases: %w", err)
	}
	api, err := app.NewAPI(ctx, cfg, log, postgres.Options{})
	if err != nil {
		return err
	}
	if err := app.SeedDemo(ctx, api, log); err != nil {
		return err
	}
	if err := api.Start(); err != nil {
		return err
	}
	log.Info("ready: open the playground", "url", "http://localhost"+cfg.HTTPAddr+"/")
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-api.Done():
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
	defer cancel()
	return api.Shutdown(shutdownCtx)
}

// Command api serves the shop's GraphQL API. Run it with -prepare to create and migrate the
// shard databases first (make run does); in Kubernetes a migration job does that instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/flashsale/flashsale/app"
)

func main() {
	log := app.NewLogger()
	if err := run(log); err != nil {
		log.Error("api stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	prepare := flag.Bool("prepare", false, "create and migrate the shard databases before starting")
	prepareOnly := flag.Bool("prepare-only", false, "with -prepare: exit once the databases are ready (a migration job)")
	seed := flag.Bool("seed-demo", false, "add a few demo products when the catalog is empty")
	flag.Parse()
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	log.Info("starting api", "config", cfg)
	ctx, stop := app.SignalContext()
	defer stop()
	if *prepare {
		if err := app.Prepare(ctx, cfg); err != nil {
			return fmt.Errorf("prepare databases: %w", err)
		}
		if *prepareOnly {
			log.Info("databases prepared")
			return nil
		}
	}
	api, err := app.NewAPI(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	if *seed {
		if _, err := app.SeedDemo(ctx, api, log); err != nil {
			return err
		}
	}
	if err := api.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-api.Done():
		return err
	}
	stop() // a second signal stops the process at once
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownDelay+app.ShutdownTimeout)
	defer cancel()
	return api.Drain(shutdownCtx, cfg.ShutdownDelay)
}

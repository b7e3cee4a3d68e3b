// Command devstack is `make run`: on one machine it prepares the shard databases, starts an
// embedded Kafka-protocol broker when KAFKA_BROKERS is empty, seeds the admin and demo data,
// and runs the API and every worker in one process until Ctrl-C, which stops them all
// cleanly. In production each runs as its own binary (cmd/api, cmd/relay, cmd/*-worker),
// scaled on its own.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/workers/sweeper"
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
	brokers := cfg.KafkaBrokers
	if len(brokers) == 0 {
		embedded, err := kafka.StartEmbedded(ctx, log)
		if err != nil {
			return err
		}
		defer embedded.Close()
		brokers = embedded.Brokers()
		log.Info("embedded Kafka-protocol broker", "brokers", brokers)
	}
	if err := app.PrepareBrokers(ctx, cfg, brokers); err != nil {
		return err
	}
	api, err := app.NewAPI(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	demo, err := app.SeedDemo(ctx, api, log)
	if err != nil {
		return err
	}
	if err := api.Start(); err != nil {
		return err
	}

	// The workers share the API's connections here; each is its own binary in production.
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	d := api.Deps
	wg.Go(func() { app.RunRelays(workCtx, d, brokers) })
	wg.Go(func() { app.RunSweeper(workCtx, d, sweeper.Config{}) })
	wg.Go(func() { app.RunPruner(workCtx, d) })
	wg.Go(func() { logErr(log, "payments", app.RunPayments(workCtx, d, app.PaymentsConfig{})) })
	wg.Go(func() { logErr(log, "notifications", app.RunNotifications(workCtx, d)) })
	wg.Go(func() { logErr(log, "analytics", app.RunAnalytics(workCtx, d, brokers)) })
	base := api.BrowseURL()
	fmt.Fprintf(os.Stderr, `
The shop is running. Ctrl-C stops it.
  playground   %[1]s/
  live sale    %[1]s/live?sale=%[2]s  (starts %[3]s)
  admin        %[4]s / %[5]s
  customer     %[6]s / %[7]s

`, base, demo.Sale.ID, demo.Sale.StartsAt.Local().Format(time.Kitchen), cfg.AdminEmail, shownPassword(cfg.AdminPassword),
		app.DemoCustomerEmail, app.DemoCustomerPassword)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-api.Done():
		log.Error("api stopped", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
	defer cancel()
	// Stop taking requests first, then let the workers finish what they hold.
	err = api.StopServing(shutdownCtx)
	stopWork()
	wg.Wait()
	api.Close()
	return err
}

// shownPassword prints the development admin password, and only names a password of one's own.
func shownPassword(p string) string {
	if p == app.DevAdminPassword {
		return p
	}
	return "(ADMIN_PASSWORD)"
}

func logErr(log *slog.Logger, worker string, err error) {
	if err != nil {
		log.Error("worker stopped", "worker", worker, "err", err)
	}
}

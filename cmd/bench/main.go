// Command bench is `make bench`: the flash-sale benchmark beside its baselines from the same
// run, and the benchmarks of the cache, the dataloaders, the live subscriptions and the
// payment drain (see internal/bench). It prints progress on stderr, one table on stdout,
// and writes every figure to bench/results.json.
//
// By default it starts the whole stack in this process on its own databases
// (flashsale_bench_shard_0..3); -url measures a running `make run` instead, skipping what
// needs in-process access.
//
//	bench                                  # everything, the sizes
//	bench -only flashsale -cpuprofile cpu.out
//	bench -url http://localhost:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	services, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg := bench.DefaultConfig()
	cfg.Services = services
	cfg.AdminEmail, cfg.AdminPassword = services.AdminEmail, services.AdminPassword

	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "", "measure the running stack at this loopback URL instead of starting one")
	fs.IntVar(&cfg.Buyers, "buyers", cfg.Buyers, "flash sale: buyers")
	fs.IntVar(&cfg.Attempts, "attempts", cfg.Attempts, "flash sale: order attempts")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "flash sale: attempts in flight")
	fs.IntVar(&cfg.Quantity, "quantity", cfg.Quantity, "flash sale: units for sale")
	fs.IntVar(&cfg.FlashRounds, "rounds", cfg.FlashRounds, "flash sale: sales to run, each with its own buyers and floors; the figures are their medians")
	fs.IntVar(&cfg.CacheReads, "cache-reads", cfg.CacheReads, "cache: product reads per measurement")
	fs.IntVar(&cfg.CacheConcurrency, "cache-concurrency", cfg.CacheConcurrency, "cache: reads in flight")
	fs.IntVar(&cfg.CacheProducts, "cache-products", cfg.CacheProducts, "cache: distinct products read")
	fs.IntVar(&cfg.LoaderOrders, "loader-orders", cfg.LoaderOrders, "loaders: order(id:) lookups in the nested query")
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "subscriptions: websocket subscribers to open")
	fs.IntVar(&cfg.SubscriptionQuantity, "subscription-quantity", cfg.SubscriptionQuantity, "subscriptions: units sold out under them")
	fs.IntVar(&cfg.DrainOrders, "drain-orders", cfg.DrainOrders, "payments: orders per drain")
	fs.BoolVar(&cfg.NoBurstScheduling, "no-burst-scheduling", false, "run the in-process stack's workers without making way for the API's bursts (perf/burst)")
	only := fs.String("only", "", "comma-separated benchmarks to run, of "+strings.Join(bench.All, ","))
	out := fs.String("out", "bench/results.json", "where to write the results as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (the in-process API included) here")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of each benchmark (the flash sale's burst alone) into this directory")
	logLevel := fs.String("log-level", "warn", "the in-process stack's log level (debug, info, warn, error)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed, not only when a benchmark fails")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *cpuProfile != "" && cfg.ProfileDir != "" {
		return errors.New("-cpuprofile and -profile-dir cannot be used together: one CPU profile runs at a time")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	res, runErr := bench.Run(ctx, cfg, stderr)
	if res == nil {
		return runErr
	}
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if err := res.WriteJSON(*out); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	switch {
	case runErr != nil:
		return runErr
	case len(res.Errors) > 0:
		return fmt.Errorf("%d benchmark(s) failed", len(res.Errors))
	case res.FlashSale != nil && len(res.FlashSale.Violations) > 0:
		return fmt.Errorf("the flash sale broke %d invariant(s)", len(res.FlashSale.Violations))
	case *strict && len(res.Missed()) > 0:
		return fmt.Errorf("targets missed: %s", strings.Join(res.Missed(), "; "))
	}
	return nil
}

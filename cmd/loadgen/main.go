// Command loadgen fires a flash-sale burst at a running stack through its public GraphQL API
// and checks that nothing was oversold or lost. It prints a table, or with -json the result
// as JSON, on stdout, and progress on stderr. It exits 1 when the run failed or found a
// broken invariant.
//
// Each buyer sends from an address of its own in X-Forwarded-For, as an ingress would, so
// the stack must trust the loopback as a proxy (TRUSTED_PROXIES, the default) for its
// per-address rate limits to tell the buyers apart.
//
//	loadgen -url http://localhost:8080 -buyers 5000 -attempts 20000 -concurrency 256
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg := loadgen.DefaultConfig()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the stack (loopback only)")
	fs.StringVar(&cfg.AdminEmail, "admin-email", cfg.AdminEmail, "admin account email")
	fs.StringVar(&cfg.AdminPassword, "admin-password", cfg.AdminPassword, "admin account password")
	fs.IntVar(&cfg.Buyers, "buyers", cfg.Buyers, "buyers to register")
	fs.IntVar(&cfg.Attempts, "attempts", cfg.Attempts, "order attempts in the burst, spread over the buyers")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "attempts in flight at once")
	fs.IntVar(&cfg.Quantity, "quantity", cfg.Quantity, "units the flash sale offers")
	fs.IntVar(&cfg.PerUserLimit, "per-user-limit", cfg.PerUserLimit, "units one buyer may take")
	fs.IntVar(&cfg.RegisterConcurrency, "register-concurrency", cfg.RegisterConcurrency, "registrations in flight at once")
	fs.IntVar(&cfg.PollConcurrency, "poll-concurrency", cfg.PollConcurrency, "order queries in flight at once after the burst")
	fs.DurationVar(&cfg.StartDelay, "start-delay", cfg.StartDelay, "how long after its creation the sale starts")
	fs.DurationVar(&cfg.SaleDuration, "sale-duration", cfg.SaleDuration, "how long the sale stays open")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long after the burst every accepted order has to be PAID")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "timeout of one HTTP request")
	fs.BoolVar(&cfg.Floor, "floor", false, "also measure the { __typename } baseline at the same concurrency and count")
	fs.StringVar(&cfg.RunID, "run-id", "", "suffix making emails and idempotency keys unique (random by default)")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up on the whole run after this long")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	res, runErr := loadgen.Run(ctx, cfg, stderr)
	if res != nil {
		if err := report(stdout, res, *asJSON); err != nil {
			return err
		}
	}
	switch {
	case runErr != nil:
		return runErr
	case !res.OK():
		return fmt.Errorf("%d invariant violations", len(res.Violations))
	}
	return nil
}

func report(w io.Writer, res *loadgen.Result, asJSON bool) error {
	if !asJSON {
		return res.WriteTable(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

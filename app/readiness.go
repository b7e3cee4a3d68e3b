package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/stores/postgres"
)

// DefaultRedisReadyGrace is how long Redis may fail readiness checks, when REDIS_READY_GRACE
// is unset, before a replica says it is not ready.
const DefaultRedisReadyGrace = 10 * time.Second

// shardsCheck is ready while any shard answers: a replica with some shards down still serves
// every request that needs only the others, and those that need a down shard fail
// UNAVAILABLE naming it. Each down shard is named in the status.
func shardsCheck(db *postgres.DB) func(context.Context) error {
	return func(ctx context.Context) error {
		errs := db.PingShards(ctx)
		var down []string
		for shard, err := range errs {
			if err != nil {
				down = append(down, fmt.Sprintf("shard %d: %v", shard, err))
			}
		}
		switch {
		case len(down) == 0:
			return nil
		case len(down) == len(errs):
			return fmt.Errorf("every shard is down: %s", strings.Join(down, "; "))
		default:
			return graph.Degraded(fmt.Errorf("%d of %d shards down: %s", len(down), len(errs), strings.Join(down, "; ")))
		}
	}
}

// graceCheck lets check fail for up to grace before its failure makes the replica unready:
// a blip of a dependency every replica shares would otherwise take them all out of service
// at once. The grace counts from the first failed check of a run of failures.
type graceCheck struct {
	check func(context.Context) error
	grace time.Duration
	now   func() time.Time

	mu           sync.Mutex
	failingSince time.Time // zero while the last check passed
}

func (g *graceCheck) run(ctx context.Context) error {
	err := g.check(ctx)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failingSince = time.Time{}
		return nil
	}
	if g.failingSince.IsZero() {
		g.failingSince = now
	}
	failing := now.Sub(g.failingSince)
	if failing < g.grace {
		return graph.Degraded(fmt.Errorf("failing for %v of a grace of %v: %w", failing.Round(time.Millisecond), g.grace, err))
	}
	return fmt.Errorf("failing for %v: %w", failing.Round(time.Millisecond), err)
}

// brokerLinks are the broker connections the workers of a process depend on. A worker
// process is ready only while every one is up: a worker cut from its broker does nothing.
type brokerLinks struct {
	mu    sync.Mutex
	links []brokerLink
}

type brokerLink struct {
	name  string
	check func(context.Context) error
}

// add registers a worker's link; check returns nil while it is up.
func (b *brokerLinks) add(name string, check func(context.Context) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.links = append(b.links, brokerLink{name, check})
}

// check fails if no worker has registered a link yet, or if any link is down.
func (b *brokerLinks) check(ctx context.Context) error {
	b.mu.Lock()
	links := append([]brokerLink(nil), b.links...)
	b.mu.Unlock()
	if len(links) == 0 {
		return errors.New("no worker has started yet")
	}
	var errs []error
	for _, l := range links {
		if err := l.check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.name, err))
		}
	}
	return errors.Join(errs...)
}

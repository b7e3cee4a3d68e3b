package redis

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// AttemptTally counts, in this process, the order attempts answered without asking Redis
// (the SOLD_OUT refusals of the sold-out fast path), and adds them to their pool's attempts
// count, the one Reserve's script keeps, in batches: after a sell-out a sale refuses a great
// many attempts a second from memory, and one Redis call each would undo what answering
// from memory saves. Counting is an atomic add; every flush sends one pipeline of
// INCRBY, one per pool counted since the last.
//
// It is safe for concurrent use. Close stops its flushing and flushes what is left.
type AttemptTally struct {
	client goredis.UniversalClient
	prefix string
	log    *slog.Logger

	counts sync.Map // flashsale.PoolKey -> *atomic.Int64, attempts not yet flushed

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewAttemptTally returns a tally over the keys of NewInventory(client, prefix), flushing
// every `every` (a second when zero) until closed.
func NewAttemptTally(client goredis.UniversalClient, prefix string, every time.Duration, log *slog.Logger) *AttemptTally {
	if every <= 0 {
		every = time.Second
	}
	t := &AttemptTally{client: client, prefix: prefix, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go t.run(every)
	return t
}

// Add counts one attempt at pool.
func (t *AttemptTally) Add(pool flashsale.PoolKey) {
	c, ok := t.counts.Load(pool)
	if !ok {
		c, _ = t.counts.LoadOrStore(pool, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Flush adds the attempts counted so far to their pools' counts in Redis, with one round
// trip, or none if there are none. What a failed flush took is put back for the next.
func (t *AttemptTally) Flush(ctx context.Context) error {
	type taken struct {
		key   string
		count *atomic.Int64
		n     int64
		cmd   *goredis.IntCmd
	}
	var batch []*taken
	t.counts.Range(func(k, v any) bool {
		c := v.(*atomic.Int64)
		if n := c.Swap(0); n > 0 {
			batch = append(batch, &taken{key: newPoolKeys(t.prefix, k.(flashsale.PoolKey)).attempts, count: c, n: n})
		}
		return true
	})
	if len(batch) == 0 {
		return nil
	}
	// Each INCRBY touches one key, so the pipeline works on Redis Cluster too.
	_, err := t.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, b := range batch {
			b.cmd = p.IncrBy(ctx, b.key, b.n)
		}
		return nil
	})
	for _, b := range batch {
		if b.cmd.Err() != nil {
			b.count.Add(b.n) // not counted in Redis: the next flush tries again
		}
	}
	return err
}

func (t *AttemptTally) run(every time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			if err := t.Flush(ctx); err != nil && t.log != nil {
				t.log.Warn("flush attempts counted from memory; retrying", "err", err)
			}
			cancel()
		}
	}
}

// Close stops the periodic flush and flushes what is left, within 5 seconds.
func (t *AttemptTally) Close() {
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := t.Flush(ctx); err != nil && t.log != nil {
			t.log.Warn("flush attempts counted from memory at close", "err", err)
		}
	})
}

package apitest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/stores/postgres"
)

// StatementCounter counts the statements pgx sends to each shard, so that tests can prove how
// many shards an operation touches. Wire it in with Options (or WithTracer for a Server).
//
// What counts is what pgx reports through pgx.QueryTracer.TraceQueryStart: every Exec, Query
// and QueryRow, including the BEGIN, COMMIT and ROLLBACK that pgx sends through Exec for a
// transaction (so pgx.BeginFunc with two statements inside counts four). Not counted:
// SendBatch (pgx reports batches to a pgx.BatchTracer, which this is not; the stores batch
// only to seed the bucket table), explicit Prepare (pgx.PrepareTracer), pings, and the
// statements pgx prepares behind a Query for its statement cache, since those are the same
// statement. Statements of failed calls count too: they were sent.
type StatementCounter struct {
	mu     sync.Mutex
	counts []int
	sqls   [][]string
}

// NewStatementCounter returns a counter with nothing counted.
func NewStatementCounter() *StatementCounter { return &StatementCounter{} }

// Options returns postgres.Options that trace every shard into c.
func (c *StatementCounter) Options() postgres.Options {
	return postgres.Options{Tracer: c.Tracer}
}

// Tracer returns the pgx.QueryTracer of one shard; it is what postgres.Options.Tracer wants.
func (c *StatementCounter) Tracer(shard int) pgx.QueryTracer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grow(shard)
	return shardTracer{c: c, shard: shard}
}

func (c *StatementCounter) grow(shard int) {
	for len(c.counts) <= shard {
		c.counts = append(c.counts, 0)
		c.sqls = append(c.sqls, nil)
	}
}

// Reset forgets everything counted so far.
func (c *StatementCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.counts {
		c.counts[i] = 0
		c.sqls[i] = nil
	}
}

// Counts returns the statements sent to each shard since the last Reset, in shard order.
func (c *StatementCounter) Counts() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.counts)
}

// Total returns the statements sent to all shards since the last Reset.
func (c *StatementCounter) Total() int {
	n := 0
	for _, v := range c.Counts() {
		n += v
	}
	return n
}

// String lists the statements counted per shard, for failure messages.
func (c *StatementCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i, sqls := range c.sqls {
		fmt.Fprintf(&b, "shard %d: %d statement(s)\n", i, c.counts[i])
		for _, s := range sqls {
			fmt.Fprintf(&b, "  %s\n", strings.Join(strings.Fields(s), " "))
		}
	}
	return b.String()
}

// shardTracer is the pgx.QueryTracer of one shard.
type shardTracer struct {
	c     *StatementCounter
	shard int
}

// TraceQueryStart counts the statement against the shard.
func (t shardTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.counts[t.shard]++
	t.c.sqls[t.shard] = append(t.c.sqls[t.shard], data.SQL)
	return ctx
}

// TraceQueryEnd does nothing: a statement counts once it is sent, whatever its outcome.
func (shardTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

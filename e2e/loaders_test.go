package e2e_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// usersOrdersQuery asks for each order's buyer and the buyer's first orders, with their
// products and sales: a level that comes from lists rather than from root fields.
func usersOrdersQuery(ids []flashsale.OrderID) string {
	var b strings.Builder
	b.WriteString("{")
	for i, id := range ids {
		fmt.Fprintf(&b, ` o%d: order(id: %q) { id user { orders(first: 10) { edges { node { id product { id } flashSale { id } } } } } }`, i, id)
	}
	b.WriteString(" }")
	return b.String()
}

// A level's keys reach the loaders together because they are handed over together, not
// because a timer happened to cover them: so a level of 1,000 orders still goes out as one
// statement per shard on one processor, where the level's resolvers run one after another,
// and under the race detector, which slows each of them down several times.
//
// Not parallel: GOMAXPROCS is the whole process's, and parallel tests wait until this one
// is done.
func TestOneProcessorSendsOneStatementPerShardPerLevel(t *testing.T) {
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter), apitest.WithConfig(func(c *app.Config) {
		c.ComplexityLimit = 10_000_000
	}))
	ids := orderFixture(t, s, 1000)
	admin := s.AdminToken(t)

	for _, tc := range []struct {
		name   string
		query  string
		levels int // entity reads the query makes, each at most one statement per shard
	}{
		{"orders with their user, product and sale", ordersQuery(ids), 4},
		{"orders with their user's first orders, their products and sales", usersOrdersQuery(ids), 5},
	} {
		flushCache(t, s)
		counter.Reset()
		res := onOneProcessor(func() *apitest.Response { return s.Do(t, admin, tc.query, nil) })
		var data map[string]any
		res.MustData(t, &data)
		if got := len(data); got != len(ids) {
			t.Fatalf("%s: %d orders asked, %d answered", tc.name, len(ids), got)
		}
		if got := counter.Total(); got < tc.levels {
			t.Errorf("%s: %d statements in all, want at least %d (one per level): the reads did not reach PostgreSQL", tc.name, got, tc.levels)
		}
		for shard, c := range counter.Counts() {
			if c > tc.levels {
				t.Errorf("%s: shard %d got %d statements, want at most %d:\n%s", tc.name, shard, c, tc.levels, counter)
			}
		}
	}
}

// onOneProcessor runs f with GOMAXPROCS=1 and restores it after.
func onOneProcessor[T any](f func() T) T {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	return f()
}

package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/stores/postgres"
)

// LoadersResult is the PostgreSQL statements one nested query sends with the dataloaders
// and with batching off, both with the Redis cache off so that every read reaches
// PostgreSQL: orders_in_request `order(id:)` lookups, each with its user, product and flash
// sale.
type LoadersResult struct {
	Shards          int `json:"shards"`
	OrdersInRequest int `json:"orders_in_request"`
	// Distinct rows the request reads besides the orders.
	Users    int `json:"users"`
	Products int `json:"products"`
	Sales    int `json:"sales"`
	// StatementsPerRequest and StatementsWithoutLoaders are the median of loaderRequests
	// requests; Requests lists each request's statements with loaders. The loaders hand a
	// level's keys over together, so every request should send the same: the report shows
	// the range beside the median when one did not.
	StatementsPerRequest     float64 `json:"statements_per_request"`
	StatementsWithoutLoaders float64 `json:"statements_without_loaders"`
	Requests                 []int   `json:"requests"`
	// PerShard is one request's statements per shard, with loaders.
	PerShard         []int   `json:"per_shard"`
	WithLoadersMs    float64 `json:"with_loaders_ms"`
	WithoutLoadersMs float64 `json:"without_loaders_ms"`
}

// loaderRequests is how many times the query is sent to each API.
const loaderRequests = 5

// loaderLevels is how many entity types the query loads: orders, users, products, sales.
// With loaders each costs at most one statement per shard.
const loaderLevels = 4

// runLoaders places cfg.LoaderOrders orders through s (half of products, half of flash
// sales, two per buyer, every order of another product), then sends the nested query to the
// stack's Batched and Unbatched APIs and counts their statements.
func runLoaders(ctx context.Context, cfg Config, s *shop, st *Stack, progress io.Writer) (*LoadersResult, error) {
	n := cfg.LoaderOrders
	buyers, err := s.registerBuyers(ctx, "loaders", (n+1)/2, 8)
	if err != nil {
		return nil, err
	}
	products := make([]string, n)
	sales := make([]string, n) // sales[i] for odd i
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		firstErr = cmpErr(firstErr, err)
		mu.Unlock()
	}
	loadgen.ForEach(ctx, n, 8, func(i int) {
		p, err := s.createProduct(ctx, fmt.Sprintf("Loader product %d of %s", i, s.runID), 100)
		if err != nil {
			fail(err)
			return
		}
		products[i] = p
		if i%2 == 1 {
			if sales[i], err = s.createSale(ctx, p, 100, 10, time.Now().Add(-time.Minute)); err != nil {
				fail(err)
			}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	orders := make([]string, n)
	loadgen.ForEach(ctx, n, 8, func(i int) {
		id, err := s.placeOrder(ctx, buyers[i/2], products[i], sales[i], fmt.Sprintf("loaders-%s-%d", s.runID, i))
		if err != nil {
			fail(fmt.Errorf("place order %d: %w", i, err))
			return
		}
		orders[i] = id
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var q strings.Builder
	q.WriteString("query {\n")
	for i, id := range orders {
		fmt.Fprintf(&q, "  o%d: order(id: %q) { id status quantity user { id email } product { id name } flashSale { id salePriceCents } }\n", i, id)
	}
	q.WriteString("}")
	query := q.String()

	r := &LoadersResult{
		Shards: len(st.Config.DatabaseShards), OrdersInRequest: n,
		Users: len(buyers), Products: n, Sales: n / 2,
	}
	measure := func(api string, url string, c *statementCounter) (requests []int, perShard []int, msPer float64, err error) {
		client, err := loadgen.NewClient(url, 1, requestTimeout)
		if err != nil {
			return nil, nil, 0, err
		}
		defer client.Close()
		var took time.Duration
		for range loaderRequests {
			var out map[string]*struct {
				ID      string               `json:"id"`
				User    *struct{ ID string } `json:"user"`
				Product *struct{ ID string } `json:"product"`
			}
			var t0 time.Time
			_, err := retry(ctx, progress, api+": nested query", func() (struct{}, error) {
				c.reset()
				t0 = time.Now()
				return struct{}{}, client.Do(ctx, s.admin, query, nil, &out)
			})
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%s: nested query: %w", api, err)
			}
			took += time.Since(t0)
			if len(out) != n {
				return nil, nil, 0, fmt.Errorf("%s: nested query answered %d orders, want %d", api, len(out), n)
			}
			for k, o := range out {
				if o == nil || o.User == nil || o.Product == nil {
					return nil, nil, 0, fmt.Errorf("%s: %s answered incomplete: %+v", api, k, o)
				}
			}
			perShard = c.counts()
			total := 0
			for _, v := range perShard {
				total += v
			}
			requests = append(requests, total)
		}
		return requests, perShard, ms(took / loaderRequests), nil
	}
	// Both variants read PostgreSQL directly (NoCache), so that every read is a statement.
	for _, v := range []struct {
		name     string
		batching bool
		stmts    *float64
		ms       *float64
	}{
		{"loaders", true, &r.StatementsPerRequest, &r.WithLoadersMs},
		{"no loaders", false, &r.StatementsWithoutLoaders, &r.WithoutLoadersMs},
	} {
		counter := newStatementCounter(r.Shards)
		api, stop, err := st.startVariant(ctx, func(c *app.Config) {
			// Statements are counted, not timed: a small pool leaves connections for others.
			c.DatabasePoolSize = min(c.DatabasePoolSize, 4)
		}, app.Options{DB: postgres.Options{Tracer: counter.tracer}, NoCache: true, NoBatching: !v.batching})
		if err != nil {
			return nil, fmt.Errorf("start the API for %s: %w", v.name, err)
		}
		requests, perShard, msPer, err := measure(v.name, api.URL(), counter)
		stop()
		if err != nil {
			return nil, err
		}
		counts := make([]float64, len(requests))
		for i, n := range requests {
			counts[i] = float64(n)
		}
		*v.stmts, *v.ms = upperMedian(counts), msPer
		if v.batching {
			r.PerShard, r.Requests = perShard, requests
		}
	}
	fmt.Fprintf(progress, "loaders: %.1f statements per request with loaders (requests %v; the last %v per shard), %.1f without\n",
		r.StatementsPerRequest, r.Requests, r.PerShard, r.StatementsWithoutLoaders)
	return r, nil
}

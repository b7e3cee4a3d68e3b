package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/bench"
)

// The gauges of the caches clients fill with the documents they send.
const (
	queryCacheBytes   = "flashsale_graphql_query_cache_bytes"
	queryCacheEntries = "flashsale_graphql_query_cache_entries"
	persistedBytes    = "flashsale_graphql_persisted_queries_bytes"
	persistedEntries  = "flashsale_graphql_persisted_queries_entries"
)

// cacheGauges reads the four gauges.
func cacheGauges(t *testing.T, s *apitest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, name := range []string{queryCacheBytes, queryCacheEntries, persistedBytes, persistedEntries} {
		out[name] = metric(t, s, name)
	}
	return out
}

// wantAlive fails unless { __typename } is answered within a generous bound: a liveness
// check after an abusive request, not a measure of speed (BenchmarkAbuse is).
func wantAlive(t *testing.T, s *apitest.Server) {
	t.Helper()
	start := time.Now()
	s.Do(t, "", `{ __typename }`, nil).MustData(t, &struct{}{})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("{ __typename } took %v after the probe; the server is still busy with it", d)
	}
}

// wantUnknownHash fails unless the server answers the hash alone with PersistedQueryNotFound.
func wantUnknownHash(t *testing.T, s *apitest.Server, hash string) {
	t.Helper()
	r := s.Send(t, "", apitest.Request{Extensions: map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	if len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Errorf("the hash alone got status %d, errors %+v; want PersistedQueryNotFound, the query not kept", r.Status, r.Errors)
	}
}

// TestAbuseProbesAreRefusedUpFront sends each probe of the issue "The front door holds
// against the internet" (bench.AbuseProbes) as an anonymous client: each is refused with
// COMPLEXITY_LIMIT_EXCEEDED or BAD_USER_INPUT, before any resolver (no statement reaches a
// shard: the logins would each read the user), keeps nothing in the caches, and leaves the
// server answering at once.
func TestAbuseProbesAreRefusedUpFront(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	s.Register(t, "victim@example.com", "victim-password", "Victim")
	for _, p := range bench.AbuseProbes() {
		// Not parallel: the counter and the gauges are the server's.
		t.Run(p.Name, func(t *testing.T) {
			before := cacheGauges(t, s)
			counter.Reset()
			r := s.Post(t, "", "application/json", p.Body())
			wantRefused(t, r, flashsale.ECOMPLEXITY, flashsale.EINVALID)
			if len(r.Errors) != 1 {
				t.Fatalf("got %d errors; want one refusal", len(r.Errors))
			}
			t.Logf("refused with %d: %s", r.Status, r.Errors[0].Message)
			if len(r.Body) > 1000 {
				t.Errorf("the refusal is %d bytes; want a short one", len(r.Body))
			}
			if got := counter.Total(); got != 0 {
				t.Errorf("the probe sent %d statements; want 0, refused before any resolver\n%s", got, counter)
			}
			if after := cacheGauges(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the caches went from %v to %v; a refused document must leave nothing", before, after)
			}
			if h := p.Hash(); h != "" {
				wantUnknownHash(t, s, h)
			}
			wantAlive(t, s)
		})
	}
	// The gauges move for what is kept: without this, "unchanged" above could not fail.
	before := cacheGauges(t, s)
	s.Do(t, "", `{ products(first: 1) { edges { cursor } } }`, nil).MustData(t, &struct{}{})
	if after := cacheGauges(t, s); after[queryCacheEntries] != before[queryCacheEntries]+1 || after[queryCacheBytes] <= before[queryCacheBytes] {
		t.Errorf("a new query took the parsed-query cache from %v to %v; want one more entry and more bytes", before, after)
	}
}

// TestPlaygroundIntrospectionIsServed sends the playground's own introspection query, which
// is deep and walks every type: the limits count introspection, and let this one through.
func TestPlaygroundIntrospectionIsServed(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	var data struct {
		Schema struct {
			QueryType struct{ Name string }
			Types     []struct{ Name string }
		} `json:"__schema"`
	}
	s.Do(t, "", bench.IntrospectionQuery, nil).MustData(t, &data)
	if data.Schema.QueryType.Name != "Query" || len(data.Schema.Types) < 20 {
		t.Errorf("got query type %q and %d types; want Query and the whole schema", data.Schema.QueryType.Name, len(data.Schema.Types))
	}
}

// persisted returns the persisted-query extension of query.
func persisted(query string) (hash string, ext map[string]any) {
	sum := sha256.Sum256([]byte(query))
	hash = hex.EncodeToString(sum[:])
	return hash, map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
}

// TestPersistedQueriesKeepOnlyWhatPasses sends documents with their persisted-query hash:
// only one that parses, validates and passes every limit is kept; the 250 distinct 700 kB
// documents of the issue, and documents refused by each limit, leave their hash unknown and
// the store empty.
func TestPersistedQueriesKeepOnlyWhatPasses(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	login := `login(email: "nobody@example.com", password: "password-1") { accessToken }`
	refused := map[string]string{
		"syntax error":        `{ products { edges { cursor } }`,
		"unknown field":       `{ nothing }`,
		"two password checks": `mutation { a: ` + login + ` b: ` + login + ` }`,
		"over the complexity": `{ a: products(first: 100) { edges { node { id name description priceCents stock } } } ` +
			`b: products(first: 100) { edges { node { id name description priceCents stock } } } ` +
			`c: products(first: 100) { edges { node { id name description priceCents stock } } } }`,
	}
	t.Run("refused", func(t *testing.T) {
		for name, query := range refused {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				hash, ext := persisted(query)
				wantRefused(t, s.Send(t, "", apitest.Request{Query: query, Extensions: ext}), flashsale.ECOMPLEXITY, flashsale.EINVALID)
				wantUnknownHash(t, s, hash)
			})
		}
		t.Run("250 large documents", func(t *testing.T) {
			t.Parallel()
			for i := range 250 {
				p := bench.LargePersistedQuery(i)
				wantRefused(t, s.Post(t, "", "application/json", p.Body()), flashsale.ECOMPLEXITY, flashsale.EINVALID)
				if i%50 == 0 {
					wantUnknownHash(t, s, p.Hash())
				}
			}
		})
	})
	if got := metric(t, s, persistedEntries); got != 0 {
		t.Errorf("%d persisted queries kept after refusals only; want 0", got)
	}
	// A query that passes is kept, so that the checks above can fail.
	query := `query Kept { __typename }`
	hash, ext := persisted(query)
	s.Send(t, "", apitest.Request{Query: query, Extensions: ext}).MustData(t, &struct{}{})
	s.Send(t, "", apitest.Request{Extensions: map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}).
		MustData(t, &struct{}{})
	if got := metric(t, s, persistedEntries); got != 1 {
		t.Errorf("%d persisted queries kept after one that passed; want 1", got)
	}
}

// TestQueryCachesAreBoundedInBytes fills the parsed-query cache and the persisted queries
// with distinct valid documents of 30 kB each, many times their budget: every one is
// served, and the caches hold no more bytes than their budgets, yet hold some.
func TestQueryCachesAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	const queryBudget, persistedBudget = 512 << 10, 128 << 10
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) {
		c.QueryCacheBytes, c.PersistedQueriesBytes = queryBudget, persistedBudget
	}))
	padding := strings.Repeat("x", 30_000)
	for i := range 100 {
		// A comment is one token: the document passes every limit.
		query := fmt.Sprintf("# %d %s\n{ __typename }", i, padding)
		_, ext := persisted(query)
		s.Send(t, "", apitest.Request{Query: query, Extensions: ext}).MustData(t, &struct{}{})
	}
	g := cacheGauges(t, s)
	if g[queryCacheBytes] > queryBudget || g[queryCacheEntries] == 0 {
		t.Errorf("parsed-query cache holds %d bytes in %d entries; want some, at most %d bytes", g[queryCacheBytes], g[queryCacheEntries], queryBudget)
	}
	if g[persistedBytes] > persistedBudget || g[persistedEntries] == 0 {
		t.Errorf("persisted queries hold %d bytes in %d entries; want some, at most %d bytes", g[persistedBytes], g[persistedEntries], persistedBudget)
	}
	wantAlive(t, s)
}

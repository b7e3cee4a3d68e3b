package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/bench"
	"github.com/flashsale/flashsale/ratelimit"
)

// BenchmarkHandler measures the API's own cost per request, with no network and no client:
// the floor ({ __typename }), a flash-sale order refused as SOLD_OUT (by the sold-out fast
// path, since GraphQL answered the same query text SOLD_OUT during setup), and a cached
// product read (a cached response after the first). The flash-sale benchmark (make bench)
// compares the second with the first over HTTP; this tells how much of the gap is the
// server's. Run with go test ./e2e -run '^$' -bench Handler -benchmem.
//
// The sold-out refusal and the cached read are also sent as Apollo Client 4 sends them
// (POST, its Accept, extensions.clientLibrary) and the read as urql 6 does (GET, its
// Accept): the fast paths must cost those shapes what they cost the plain one.
//
// The rate limits are on, with budgets too large to refuse anything, so that every request
// pays for its checks as a request within its budget does: the floor, the sold-out refusal
// and the cached read their local one, and the viewer's read its Redis round trip too.
func BenchmarkHandler(b *testing.B) {
	s := apitest.Start(b, withLimits(unrefusing()))
	saleID, productID := activeSale(b, s, "Bench", 1, 1)
	placeOrders(b, s, customer(b, s, "first@example.test"), saleID, 1)
	late := customer(b, s, "late@example.test")
	lateOrder := map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": "sold-out"}}
	s.Do(b, late, placeInSale, lateOrder).WantCode(b, "SOLD_OUT")
	const productRead = `query($id: ID!) { product(id: $id) { id name description priceCents } }`
	productVars := map[string]any{"id": productID}

	h := s.API.Handler()
	requests := []struct {
		name, shape, token, query string
		vars                      map[string]any
		want                      string // in the response body
	}{
		{"floor", "plain", "", `{ __typename }`, nil, `"Query"`},
		// The viewer comes from its local copy: beyond the floor, mostly the shared limit's
		// Redis round trip, which every read that is not answered from memory pays.
		{"viewer-read", "plain", late, `{ me { id } }`, nil, `"me"`},
		{"sold-out", "plain", late, placeInSale, lateOrder, `"SOLD_OUT"`},
		{"sold-out-apollo", "apollo", late, placeInSale, lateOrder, `"SOLD_OUT"`},
		{"cached-product", "plain", "", productRead, productVars, `"Bench"`},
		{"cached-product-apollo", "apollo", "", productRead, productVars, `"Bench"`},
		{"cached-product-urql", "urql", "", productRead, productVars, `"Bench"`},
	}
	for _, r := range requests {
		newRequest := benchRequest(b, r.shape, r.token, r.query, r.vars)
		b.Run(r.name, func(b *testing.B) { serveParallel(b, h, newRequest, r.want) })
	}
}

// benchRequest returns a function making the request of a client's shape: "plain" (POST,
// no Accept, the query and variables), "apollo" (Apollo Client 4's HttpLink) or "urql"
// (urql 6's GET).
func benchRequest(b *testing.B, shape, token, query string, vars map[string]any) func() *http.Request {
	varsJSON, err := json.Marshal(vars)
	if err != nil {
		b.Fatal(err)
	}
	var method, target, accept string
	var body []byte
	switch shape {
	case "plain":
		method, target = http.MethodPost, "/query"
		body, err = json.Marshal(map[string]any{"query": query, "variables": vars})
	case "apollo":
		method, target, accept = http.MethodPost, "/query", apolloAccept
		body, err = json.Marshal(map[string]any{"operationName": nil, "variables": vars, "query": query,
			"extensions": map[string]any{"clientLibrary": map[string]any{"name": "@apollo/client", "version": "4.0.7"}}})
	case "urql":
		method, accept = http.MethodGet, urqlAccept
		target = "/query?query=" + url.QueryEscape(query) + "&variables=" + url.QueryEscape(string(varsJSON))
	default:
		b.Fatalf("no request shape %q", shape)
	}
	if err != nil {
		b.Fatal(err)
	}
	return func() *http.Request {
		req := httptest.NewRequest(method, target, bytes.NewReader(body))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req
	}
}

// BenchmarkAbuse measures the handler's cost of refusing each probe of bench.AbuseProbes
// beside the floor ({ __typename }), as BenchmarkHandler does: the cost of the worst abuse
// probe over the floor's is what an anonymous client can make the API spend per request.
// Run with go test ./e2e -run '^$' -bench Abuse -benchmem.
func BenchmarkAbuse(b *testing.B) {
	s := apitest.Start(b)
	h := s.API.Handler()
	floor, err := json.Marshal(map[string]any{"query": `{ __typename }`})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("floor", func(b *testing.B) { serveParallel(b, h, postRequest(floor), `"Query"`) })
	for _, p := range bench.AbuseProbes() {
		b.Run(p.Name, func(b *testing.B) { serveParallel(b, h, postRequest(p.Body()), `"errors"`) })
	}
}

// postRequest returns a function making an anonymous POST of body.
func postRequest(body []byte) func() *http.Request {
	return func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
}

// serveParallel sends the requests newRequest makes to h, from every core at once, and fails
// unless each answer contains want. Beside ns/op, which other work on the machine stretches,
// it reports the process's CPU time per request (cpu-ns/op).
func serveParallel(b *testing.B, h http.Handler, newRequest func() *http.Request, want string) {
	b.ReportAllocs()
	b.SetBytes(newRequest().ContentLength)
	cpu0 := processCPU(b)
	defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, newRequest())
			if !strings.Contains(w.Body.String(), want) {
				b.Fatalf("answered %d %.300s", w.Code, w.Body.String())
			}
		}
	})
}

// BenchmarkPlaceOrder measures an accepted flash-sale order through the API's handler, with
// its real Redis reservation and PostgreSQL write, 64 in flight per core: with the machine
// saturated, ns/op is the machine's time per order (the API's, Redis's and PostgreSQL's),
// rate limits included (two Redis round trips: the request's and the order's budgets).
func BenchmarkPlaceOrder(b *testing.B) {
	s := apitest.Start(b, withLimits(unrefusing()))
	saleID, _ := activeSale(b, s, "Bench", 10_000_000, 10_000_000)
	buyer := customer(b, s, "buyer@example.test")
	h := s.API.Handler()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, err := json.Marshal(map[string]any{"query": placeInSale, "variables": map[string]any{
				"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": "k" + strconv.FormatInt(n.Add(1), 10)}}})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+buyer)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if !strings.Contains(w.Body.String(), `"PENDING"`) {
				b.Fatalf("order answered %d %s", w.Code, w.Body.String())
			}
		}
	})
}

// unrefusing are the default budgets with those a benchmark's one client spends raised out
// of its reach: every check is made, none refuses.
func unrefusing() ratelimit.Budgets {
	b := app.DefaultRateLimits()
	huge := flashsale.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}
	b.Requests, b.Orders = huge, huge
	return b
}

// processCPU returns the CPU time this process has used, user and system, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
)

// TestExpensiveOperationsAreRefusedUpFront sends operations built to exhaust the server:
// each is refused with COMPLEXITY_LIMIT_EXCEEDED before any resolver runs, which the
// statement counter proves (every resolver here would read a shard), while a modest
// version of each is served.
func TestExpensiveOperationsAreRefusedUpFront(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	token := customer(t, s, "greedy@example.com")
	createProduct(t, s, "Bait", 100, 1)

	// me → orders → edges → node → user → orders …: four levels a turn, one unit of
	// complexity a level (first: 1), so only the depth limit can refuse it.
	deep := func(turns int) string {
		q := "id"
		for range turns {
			q = "orders(first: 1) { edges { node { user { " + q + " } } } }"
		}
		return "{ me { " + q + " } }"
	}
	// The same depth through a chain of fragments, each spreading the next.
	fragments := func(n int) string {
		var b strings.Builder
		b.WriteString("{ me { ...F0 } }\n")
		for i := range n {
			fmt.Fprintf(&b, "fragment F%d on User { orders(first: 1) { edges { node { user { ", i)
			if i+1 < n {
				fmt.Fprintf(&b, "...F%d", i+1)
			} else {
				b.WriteString("id")
			}
			b.WriteString(" } } } } }\n")
		}
		return b.String()
	}
	// A fragment bomb: each fragment spreads the next twice, so 2^n fields at the bottom.
	bomb := func(n int) string {
		var b strings.Builder
		b.WriteString("{ me { ...B0 } }\n")
		for i := range n {
			fmt.Fprintf(&b, "fragment B%d on User { a: orders(first: 1) { edges { node { user { ...B%d } } } } b: orders(first: 1) { edges { node { user { ...B%d } } } } }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&b, "fragment B%d on User { id }\n", n)
		return b.String()
	}
	// The same without depth: each fragment spreads the next twice at one level.
	flatBomb := func(n int) string {
		var b strings.Builder
		b.WriteString("{ me { ...C0 } }\n")
		for i := range n {
			fmt.Fprintf(&b, "fragment C%d on User { ...C%d ...C%d }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&b, "fragment C%d on User { id orders(first: 1) { edges { cursor } } }\n", n)
		return b.String()
	}
	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("mutation {")
		if !strings.HasPrefix(field, "login") {
			b.Reset()
			b.WriteString("{")
		}
		for i := range n {
			fmt.Fprintf(&b, " a%d: %s", i, field)
		}
		b.WriteString(" }")
		return b.String()
	}
	// Users come from a Redis cache once read; a user's list of orders always from their shard.
	ordersOfMe := "me { id orders(first: 1) { edges { cursor } } }"
	login := `login(email: "greedy@example.com", password: "customer-password") { accessToken }`
	tests := []struct {
		name       string
		query      string
		refused    bool
		statements bool // whether the served version reads a shard
	}{
		{"deep query", deep(4), true, false},
		{"deep chain of fragments", fragments(4), true, false},
		// 2^16 fields once expanded: enough to be refused, small enough that the cost of
		// expanding them (see the report on issue #2) does not slow the suite.
		{"fragment bomb", bomb(16), true, false},
		{"flat fragment bomb", flatBomb(16), true, false},
		{"1,000 aliases of me", aliases(1000, "me { id }"), true, false},
		{"500 aliases of my orders", aliases(500, ordersOfMe), true, false},
		{"30 aliases of login", aliases(30, login), true, false},
		{"2 aliases of login", aliases(2, login), true, false},
		{"100 pages of products", aliases(100, "products(first: 100) { edges { node { id name } } }"), true, false},
		{"shallow query", deep(2), false, true},
		{"short chain of fragments", fragments(2), false, true},
		{"small flat fragment tree", flatBomb(3), false, true},
		{"10 aliases of my orders", aliases(10, ordersOfMe), false, true},
		{"one login", aliases(1, login), false, true},
	}
	// Not parallel: each request's statements are counted on the one counter.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter.Reset()
			r := s.Do(t, token, tt.query, nil)
			if !tt.refused {
				r.MustData(t, &struct{}{})
				if tt.statements && counter.Total() == 0 {
					t.Errorf("served without reading any shard; the counter cannot prove refusals")
				}
				return
			}
			r.WantCode(t, flashsale.ECOMPLEXITY)
			wantNoLeak(t, r)
			if r.Status >= 500 {
				t.Errorf("got status %d; want a 4xx or 200", r.Status)
			}
			if string(r.Data) != "" && string(r.Data) != "null" {
				t.Errorf("got data %.200s; want none", r.Data)
			}
			if got := counter.Total(); got != 0 {
				t.Errorf("a refused operation sent %d statements; want 0, refused before any resolver\n%s", got, counter)
			}
		})
	}
}

// TestFullPageOfProductsIsServed asks for the largest page (flashsale.MaxPageSize) with every
// field of a product: graph.ComplexityLimit is documented to admit it.
func TestFullPageOfProductsIsServed(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	query := fmt.Sprintf(`{ products(first: %d) { edges { cursor node { id name description priceCents stock createdAt updatedAt } }
		pageInfo { hasNextPage endCursor } } }`, flashsale.MaxPageSize)
	s.Do(t, "", query, nil).MustData(t, &struct{}{})
}

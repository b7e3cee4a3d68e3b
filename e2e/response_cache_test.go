package e2e_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// cachedResponses reads the API's count of requests answered from the response cache.
func cachedResponses(t *testing.T, s *apitest.Server) int {
	t.Helper()
	return metric(t, s, "flashsale_graphql_cached_responses_total")
}

// readUntilCached reads until an answer comes from the response cache. An API hears its own
// invalidations (the product's creation) back over pub/sub a moment after making them, and
// each drops what was cached before it arrived, so the first reads may not be cached.
func readUntilCached(t *testing.T, s *apitest.Server, token, query string, vars map[string]any) *apitest.Response {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		before := cachedResponses(t, s)
		r := s.Do(t, token, query, vars)
		apitest.CheckErrors(t, r)
		if cachedResponses(t, s) > before {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read was answered from the response cache within %v", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const productPage = `query($id: ID!) { product(id: $id) { ` + productFields + ` createdAt updatedAt } }`

func TestRepeatedProductReadsAreAnsweredFromTheResponseCache(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Popular", 1200, 5)
	vars := map[string]any{"id": p.ID}
	buyers := []string{customer(t, s, testenv.Name()+"-1@example.test"), customer(t, s, testenv.Name()+"-2@example.test"), ""}
	first := readUntilCached(t, s, "", productPage, vars)
	before := cachedResponses(t, s)
	for _, token := range buyers {
		again := s.Do(t, token, productPage, vars)
		if !bytes.Equal(again.Body, first.Body) || again.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
			t.Errorf("a cached answer differs from the first:\n%s %s\n%s %s", again.Header.Get("Content-Type"), again.Body,
				first.Header.Get("Content-Type"), first.Body)
		}
	}
	if got := cachedResponses(t, s) - before; got != 3 {
		t.Errorf("3 repeated reads: %d answered from the response cache, want 3", got)
	}

	// A write drops the cached response at once in the process that made it.
	s.Do(t, s.AdminToken(t), `mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 999}) { id } }`, vars).
		MustData(t, &map[string]any{})
	var data struct{ Product struct{ PriceCents int } }
	s.Do(t, "", productPage, vars).MustData(t, &data)
	if data.Product.PriceCents != 999 {
		t.Errorf("price read right after the update = %d, want 999", data.Product.PriceCents)
	}
}

func TestAReplicaDropsItsCachedResponsesWhenAnotherWrites(t *testing.T) {
	t.Parallel()
	a := apitest.StartStack(t)
	b := apitest.StartReplica(t, a)
	p := createProduct(t, a, "Old name", 1200, 5)
	vars := map[string]any{"id": p.ID}
	var data struct{ Product struct{ Name string } }
	readUntilCached(t, b, "", productPage, vars)
	a.Do(t, a.AdminToken(t), `mutation($id: ID!) { updateProduct(id: $id, input: {name: "New name"}) { id } }`, vars).
		MustData(t, &map[string]any{})
	deadline := time.Now().Add(2 * time.Second) // one pub/sub hop; far below the 5 s lapse
	for {
		b.Do(t, "", productPage, vars).MustData(t, &data)
		if data.Product.Name == "New name" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica still answers %q 2 s after the update", data.Product.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nothing that depends on the viewer, the clock or live counters is ever cached, nor anything
// with errors: each of these asks the same request twice and must see no cached answer.
func TestResponseCacheKeepsOnlyWhatIsTheSameForEveryone(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, productID := activeSale(t, s, "Live", 10, 5)
	alice, bob := customer(t, s, testenv.Name()+"-a@example.test"), customer(t, s, testenv.Name()+"-b@example.test")
	before := cachedResponses(t, s)

	t.Run("the viewer", func(t *testing.T) {
		for _, token := range []string{alice, bob, alice} {
			var data struct{ Me struct{ Email string } }
			s.Do(t, token, `{ me { email } }`, nil).MustData(t, &data)
			if want := map[string]string{alice: "-a@", bob: "-b@"}[token]; !strings.Contains(data.Me.Email, want) {
				t.Errorf("me.email = %q, want the viewer's own (%s)", data.Me.Email, want)
			}
		}
	})
	t.Run("live stock", func(t *testing.T) {
		query := `query($id: ID!) { product(id: $id) { name stock } }`
		var data struct{ Product struct{ Stock int } }
		s.Do(t, "", query, map[string]any{"id": productID}).MustData(t, &data)
		stock := data.Product.Stock
		s.Do(t, alice, `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id } }`, map[string]any{
			"in": map[string]any{"productId": productID, "quantity": 2, "idempotencyKey": testenv.Name()},
		}).MustData(t, &map[string]any{})
		s.Do(t, "", query, map[string]any{"id": productID}).MustData(t, &data)
		if data.Product.Stock != stock-2 {
			t.Errorf("stock after buying 2 = %d, want %d", data.Product.Stock, stock-2)
		}
	})
	t.Run("a sale's remaining units and status", func(t *testing.T) {
		query := `query($id: ID!) { flashSale(id: $id) { id salePriceCents remaining status } }`
		var data struct{ FlashSale struct{ Remaining int } }
		s.Do(t, "", query, map[string]any{"id": saleID}).MustData(t, &data)
		placeOrders(t, s, bob, saleID, 1)
		s.Do(t, "", query, map[string]any{"id": saleID}).MustData(t, &data)
		if data.FlashSale.Remaining != 9 {
			t.Errorf("remaining after one order = %d, want 9", data.FlashSale.Remaining)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for range 2 {
			s.Do(t, "", productPage, map[string]any{"id": "not-an-id"}).WantCode(t, flashsale.EINVALID)
		}
	})
	t.Run("the floor", func(t *testing.T) {
		for range 2 {
			s.Do(t, "", `{ __typename }`, nil).MustData(t, &map[string]any{})
		}
	})
	if got := cachedResponses(t, s) - before; got != 0 {
		t.Errorf("%d of these were answered from the response cache, want none", got)
	}
}

func TestResponseCacheKeysOnTheAcceptHeader(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Negotiated", 1200, 5)
	body := fmt.Appendf(nil, `{"query":%q,"variables":{"id":%q}}`, productPage, p.ID)
	for _, accept := range []string{"", "application/graphql-response+json", "application/json", "application/graphql-response+json"} {
		req, err := http.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		r := s.HTTP(t, req)
		want := accept
		if want == "" {
			want = "application/json"
		}
		if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, want) {
			t.Errorf("Accept %q answered Content-Type %q, want %q", accept, got, want)
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/apitest"
)

// BenchmarkHandler measures the API's own cost per request, with no network and no client:
// the floor ({ __typename }), a flash-sale order refused as SOLD_OUT, and a cached product
// read. The flash-sale benchmark (make bench) compares the second with the first over HTTP;
// this tells how much of the gap is the server's. Run with
// go test ./e2e -run '^$' -bench Handler -benchmem.
func BenchmarkHandler(b *testing.B) {
	s := apitest.Start(b)
	admin := s.AdminToken(b)
	var product struct{ CreateProduct struct{ ID string } }
	s.Do(b, admin, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`, map[string]any{
		"in": map[string]any{"name": "Bench", "description": "bench", "priceCents": 100, "stock": 10},
	}).MustData(b, &product)
	now := time.Now()
	var sale struct{ CreateFlashSale struct{ ID string } }
	s.Do(b, admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
		"in": map[string]any{
			"productId": product.CreateProduct.ID, "salePriceCents": 50, "quantity": 1, "perUserLimit": 1,
			"startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
		},
	}).MustData(b, &sale)
	first, _, _ := s.Register(b, "first@example.test", "customer-password", "First")
	late, _, _ := s.Register(b, "late@example.test", "customer-password", "Late")
	place := func(token, key string) *apitest.Response {
		return s.Do(b, token, placeOrder, map[string]any{"input": map[string]any{
			"flashSaleId": sale.CreateFlashSale.ID, "quantity": 1, "idempotencyKey": key,
		}})
	}
	apitest.CheckErrors(b, place(first, "first"))
	place(late, "sold-out").WantCode(b, "SOLD_OUT")

	h := s.API.Handler()
	requests := []struct {
		name, token, query string
		vars               map[string]any
		want               string // in the response body
	}{
		{"floor", "", `{ __typename }`, nil, `"Query"`},
		{"sold-out", late, placeOrder, map[string]any{"input": map[string]any{
			"flashSaleId": sale.CreateFlashSale.ID, "quantity": 1, "idempotencyKey": "sold-out",
		}}, `"SOLD_OUT"`},
		{"cached-product", "", `query($id: ID!) { product(id: $id) { id name description priceCents } }`,
			map[string]any{"id": product.CreateProduct.ID}, `"Bench"`},
	}
	for _, r := range requests {
		body, err := json.Marshal(map[string]any{"query": r.query, "variables": r.vars})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if r.token != "" {
						req.Header.Set("Authorization", "Bearer "+r.token)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if !strings.Contains(w.Body.String(), r.want) {
						b.Fatalf("%s answered %d %s", r.name, w.Code, w.Body.String())
					}
				}
			})
		})
	}
}

const placeOrder = `mutation($input: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $input) { id quantity } }`

package e2e_test

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
)

// TestMalformedInputIsRefused sends every kind of bad request a client can make: each is
// refused with BAD_USER_INPUT (or, for a request that is not GraphQL at all, a 4xx), never a
// 5xx, a panic, an internal error or a message showing the server's internals.
func TestMalformedInputIsRefused(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	product := createProduct(t, s, "Target", 500, 5)
	tokens := map[string]string{"": "", "customer": customer(t, s, "malformed@example.com"), "admin": s.AdminToken(t)}
	productsQ := `query($first: Int, $after: String) { products(first: $first, after: $after) { edges { cursor } } }`
	createQ := `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`
	updateQ := `mutation($id: ID!, $in: UpdateProductInput!) { updateProduct(id: $id, input: $in) { id } }`
	productQ := `query($id: ID!) { product(id: $id) { id } }`
	newProduct := func(change func(map[string]any)) map[string]any {
		in := map[string]any{"name": "Widget", "description": "", "priceCents": 100, "stock": 1}
		change(in)
		return map[string]any{"in": in}
	}
	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	bad := flashsale.EINVALID

	type request struct {
		name        string
		as          string // "", "customer" or "admin"
		query       string
		vars        map[string]any
		body        string // sent as is instead of query and vars when set
		contentType string // default application/json
		method      string // default POST
		status      int    // the status wanted, when it matters
		codes       []string
	}
	tests := []request{
		// Not a GraphQL request.
		{name: "invalid JSON", body: `{"query": "{ me { id } }"`, status: http.StatusBadRequest},
		{name: "empty body", body: " ", status: http.StatusBadRequest},
		{name: "JSON array", body: `[{"query": "{ me { id } }"}]`, status: http.StatusBadRequest},
		{name: "JSON string", body: `"{ me { id } }"`, status: http.StatusBadRequest},
		{name: "query not a string", body: `{"query": 5}`, status: http.StatusBadRequest},
		{name: "variables not an object", body: `{"query": "{ me { id } }", "variables": "x"}`, status: http.StatusBadRequest},
		{name: "deeply nested JSON", body: `{"query": "{ me { id } }", "variables": {"x": ` +
			strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`},
		{name: "body over 1 MiB", query: createQ, as: "admin",
			vars: newProduct(func(in map[string]any) { in["name"] = strings.Repeat("x", 2<<20) }), status: http.StatusRequestEntityTooLarge},
		{name: "text/plain body", body: `{"query": "{ me { id } }"}`, contentType: "text/plain"},
		{name: "form body", body: `query=%7B+me+%7B+id+%7D+%7D`, contentType: "application/x-www-form-urlencoded"},
		{name: "PUT", body: `{"query": "{ me { id } }"}`, method: http.MethodPut},
		{name: "DELETE", method: http.MethodDelete},
		{name: "mutation over GET", method: http.MethodGet,
			query: `mutation { login(email: "a@example.com", password: "password-1") { accessToken } }`},

		// Not a valid GraphQL document or operation.
		{name: "no query", body: `{}`},
		{name: "syntax error", query: `{ me { id }`},
		{name: "unknown field", query: `{ me { id password } }`},
		{name: "unknown root field", query: `{ users { id } }`},
		{name: "unknown argument", query: `{ products(last: 5) { edges { cursor } } }`},
		{name: "missing argument", query: `{ product { id } }`},
		{name: "missing selection", query: `{ me }`},
		{name: "selection on a scalar", query: `{ me { id { x } } }`},
		{name: "string for Int literal", query: `{ products(first: "ten") { edges { cursor } } }`},
		{name: "string for Int variable", query: productsQ, vars: map[string]any{"first": "ten"}},
		{name: "float for Int variable", query: productsQ, vars: map[string]any{"first": 1.5}},
		// GraphQL's Int has 32 bits; gqlgen reads 64, and the page size then costs too much.
		{name: "Int over 32 bits", query: productsQ, vars: map[string]any{"first": 99999999999},
			codes: []string{bad, flashsale.ECOMPLEXITY}},
		{name: "object for ID", query: productQ, vars: map[string]any{"id": map[string]any{"id": 1}}},
		{name: "null for ID!", query: productQ, vars: map[string]any{"id": nil}},
		{name: "missing variable", query: productQ},
		{name: "undeclared variable", query: `{ product(id: $id) { id } }`, vars: map[string]any{"id": product.ID}},
		{name: "unknown enum value", query: `{ flashSales(status: PURPLE) { id } }`},
		{name: "unknown input field", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["colour"] = "red" })},
		{name: "missing input field", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { delete(in, "priceCents") })},
		{name: "unknown operation name", body: `{"query": "query A { me { id } }", "operationName": "B"}`},
		{name: "two operations, no name", query: `query A { me { id } } query B { me { id } }`},
		{name: "mutation field in a query", query: `{ createProduct(input: {name: "x", priceCents: 1, stock: 1}) { id } }`},

		// Valid GraphQL, invalid values.
		{name: "negative price", as: "admin", query: createQ, vars: newProduct(func(in map[string]any) { in["priceCents"] = -1 })},
		{name: "negative stock", as: "admin", query: createQ, vars: newProduct(func(in map[string]any) { in["stock"] = -1 })},
		{name: "price over the maximum", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["priceCents"] = flashsale.MaxPriceCents + 1 })},
		{name: "stock over the maximum", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["stock"] = flashsale.MaxStock + 1 })},
		{name: "price over 32 bits", as: "admin", query: createQ, vars: newProduct(func(in map[string]any) { in["priceCents"] = 1 << 40 })},
		{name: "blank name", as: "admin", query: createQ, vars: newProduct(func(in map[string]any) { in["name"] = "  " })},
		{name: "name too long", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["name"] = strings.Repeat("n", flashsale.MaxProductNameLen+1) })},
		{name: "description too long", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["description"] = strings.Repeat("d", flashsale.MaxDescriptionLen+1) })},
		{name: "NUL in a product name", as: "admin", query: createQ,
			vars: newProduct(func(in map[string]any) { in["name"] = "bad\x00name" })},
		{name: "NUL in a user name", query: `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			vars: map[string]any{"in": map[string]any{"email": "nul@example.com", "password": "password-1", "name": "bad\x00name"}}},
		{name: "update to a negative price", as: "admin", query: updateQ,
			vars: map[string]any{"id": product.ID, "in": map[string]any{"priceCents": -5}}},
		{name: "update to a negative stock", as: "admin", query: updateQ,
			vars: map[string]any{"id": product.ID, "in": map[string]any{"stock": -5}}},
		{name: "update to a blank name", as: "admin", query: updateQ,
			vars: map[string]any{"id": product.ID, "in": map[string]any{"name": ""}}},

		// Ids and cursors.
		{name: `product(id: "zzz")`, query: productQ, vars: map[string]any{"id": "zzz"}},
		{name: "empty id", query: productQ, vars: map[string]any{"id": ""}},
		{name: "order id for a product id", query: productQ, vars: map[string]any{"id": "ord_" + product.ID[4:]}},
		{name: "user id for a product id", query: productQ, vars: map[string]any{"id": "usr_" + product.ID[4:]}},
		{name: "id without a number", query: productQ, vars: map[string]any{"id": "prd_"}},
		{name: "negative id", query: productQ, vars: map[string]any{"id": "prd_-1"}},
		{name: "zero id", query: productQ, vars: map[string]any{"id": "prd_0"}},
		{name: "id over 64 bits", query: productQ, vars: map[string]any{"id": "prd_99999999999999999999"}},
		{name: "very long id", query: productQ, vars: map[string]any{"id": "prd_" + strings.Repeat("9", 100_000)}},
		{name: "invalid id in an update", as: "admin", query: updateQ,
			vars: map[string]any{"id": "zzz", "in": map[string]any{"priceCents": 1}}},
		{name: "order id in an update", as: "admin", query: updateQ,
			vars: map[string]any{"id": "ord_" + product.ID[4:], "in": map[string]any{"priceCents": 1}}},
		{name: "cursor not base64", query: productsQ, vars: map[string]any{"after": "!!!"}},
		{name: "cursor of another type", query: productsQ, vars: map[string]any{"after": cursor("usr_12345")}},
		{name: "cursor of garbage", query: productsQ, vars: map[string]any{"after": cursor("prd_abc")}},
		{name: "first: -1", query: productsQ, vars: map[string]any{"first": -1}},
		{name: "first: 101", query: `{ products(first: 101) { pageInfo { hasNextPage } } }`},
		// A page of 1,000 is refused by the complexity limit before the resolver could.
		{name: "first: 1000", query: productsQ, vars: map[string]any{"first": 1000}, codes: []string{bad, flashsale.ECOMPLEXITY}},

		// Refresh tokens that are not.
		{name: "refresh token of garbage", query: `mutation { refreshToken(refreshToken: "garbage") { accessToken } }`,
			codes: []string{flashsale.EUNAUTHENTICATED}},
		{name: "refresh token of 1 KiB", query: `mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }`,
			vars: map[string]any{"t": "rt_1_" + strings.Repeat("A", 1024)}, codes: []string{flashsale.EUNAUTHENTICATED}},
	}
	t.Run("requests", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var r *apitest.Response
				switch {
				case tt.method == http.MethodGet:
					r = s.HTTP(t, newRequest(t, http.MethodGet, "/query?query="+url.QueryEscape(tt.query), "", tokens[tt.as], ""))
				case tt.method != "" || tt.contentType != "":
					r = s.HTTP(t, newRequest(t, cmp.Or(tt.method, http.MethodPost), "/query", cmp.Or(tt.contentType, "application/json"), tokens[tt.as], tt.body))
				case tt.body != "":
					r = s.Post(t, tokens[tt.as], "application/json", []byte(tt.body))
				default:
					r = s.Do(t, tokens[tt.as], tt.query, tt.vars)
				}
				codes := tt.codes
				if codes == nil {
					codes = []string{bad}
				}
				wantRefused(t, r, codes...)
				if tt.status != 0 && r.Status != tt.status {
					t.Errorf("got status %d, want %d", r.Status, tt.status)
				}
				if r.Status >= 400 && r.Status != http.StatusMethodNotAllowed && !r.JSON {
					t.Errorf("got status %d with a body that is not a GraphQL response: %.300q", r.Status, r.Body)
				}
				if r.JSON && r.Status >= 400 && len(r.Errors) == 0 {
					t.Errorf("got status %d with no errors in the body", r.Status)
				}
				for _, e := range r.Errors {
					if len(e.Message) > 1000 {
						t.Errorf("error message of %d bytes; a refusal should not echo the request back", len(e.Message))
					}
				}
			})
		}
	})
	if errs := s.Logs(slog.LevelError); len(errs) > 0 {
		t.Errorf("malformed requests made the server log %d error(s), the first:\n%.1500s", len(errs), errs[0])
	}
	var data struct{ Product Product }
	s.Do(t, "", `query($id: ID!) { product(id: $id) { `+productFields+` } }`, map[string]any{"id": product.ID}).MustData(t, &data)
	if data.Product != product {
		t.Errorf("after the malformed requests the product is %+v; want it unchanged, %+v", data.Product, product)
	}
}

func newRequest(t *testing.T, method, path, contentType, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

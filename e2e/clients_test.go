package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testenv"
)

// The request shapes of the frontend clients a shop uses, as each sends them by default:
// Apollo Client 4's HttpLink (POST, its Accept, extensions.clientLibrary, the operation
// printed with __typename in every selection), urql 6 (queries as GET within the URL limit,
// its Accept), and a browser's fetch (POST, Accept */*).
const (
	apolloAccept = "application/graphql-response+json,application/json;q=0.9"
	urqlAccept   = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"

	graphqlResponse = "application/graphql-response+json"

	// The operations as the clients print them.
	placeOrderPrinted = "mutation PlaceOrder($input: PlaceFlashSaleOrderInput!) {\n  placeFlashSaleOrder(input: $input) {\n    id\n    status\n    __typename\n  }\n}"
	productPrinted    = "query Product($id: ID!) {\n  product(id: $id) {\n    id\n    name\n    description\n    priceCents\n    __typename\n  }\n}"
)

// frontend is one client's way of sending an operation.
type frontend struct {
	name     string
	wantType string // the Content-Type it must be answered with
	// request builds the HTTP request for an operation; extensions (nil: none) are the
	// client's own beside its defaults.
	request func(t *testing.T, token, operationName, query string, vars, extensions map[string]any) *http.Request
}

// jsonText encodes v as JSON, for bodies written field by field in a client's order.
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func clientRequest(t *testing.T, method, target, contentType, accept, token string, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// apolloBody is HttpLink's body: operationName, variables, extensions, then the query, which
// a persisted query sent by its hash alone leaves out.
func apolloBody(t *testing.T, operationName, query string, vars, extensions map[string]any) string {
	ext := map[string]any{"clientLibrary": map[string]any{"name": "@apollo/client", "version": "4.0.7"}}
	for k, v := range extensions {
		ext[k] = v
	}
	body := `{"operationName":` + jsonText(t, operationName) + `,"variables":` + jsonText(t, vars) + `,"extensions":` + jsonText(t, ext)
	if query != "" {
		body += `,"query":` + jsonText(t, query)
	}
	return body + "}"
}

var (
	apollo = frontend{name: "Apollo Client 4", wantType: graphqlResponse,
		request: func(t *testing.T, token, operationName, query string, vars, extensions map[string]any) *http.Request {
			return clientRequest(t, http.MethodPost, "/query", "application/json", apolloAccept, token,
				apolloBody(t, operationName, query, vars, extensions))
		}}
	// urql sends a query as GET, its fields as URL parameters in the order of its body
	// (query, operationName, variables), and a mutation as POST.
	urql = frontend{name: "urql 6", wantType: graphqlResponse,
		request: func(t *testing.T, token, operationName, query string, vars, _ map[string]any) *http.Request {
			if strings.HasPrefix(query, "query") {
				target := "/query?query=" + url.QueryEscape(query) + "&operationName=" + url.QueryEscape(operationName) +
					"&variables=" + url.QueryEscape(jsonText(t, vars))
				return clientRequest(t, http.MethodGet, target, "", urqlAccept, token, "")
			}
			body := `{"query":` + jsonText(t, query) + `,"operationName":` + jsonText(t, operationName) + `,"variables":` + jsonText(t, vars) + `}`
			return clientRequest(t, http.MethodPost, "/query", "application/json", urqlAccept, token, body)
		}}
	// fetch is what a page writes by hand: fetch("/query", {method: "POST", headers:
	// {"Content-Type": "application/json"}, body: JSON.stringify({query, variables})}).
	fetch = frontend{name: "fetch", wantType: "application/json",
		request: func(t *testing.T, token, _, query string, vars, _ map[string]any) *http.Request {
			return clientRequest(t, http.MethodPost, "/query", "application/json", "*/*", token,
				`{"query":`+jsonText(t, query)+`,"variables":`+jsonText(t, vars)+`}`)
		}}
	frontends = []frontend{apollo, urql, fetch}
)

func wantContentType(t *testing.T, r *apitest.Response, want string) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != want {
		t.Errorf("answered with Content-Type %q; want %q", got, want)
	}
}

// Each client's order for a sold-out sale is answered by the fast path once GraphQL has answered
// its text once, with GraphQL's own bytes and the Content-Type the client asked for.
func TestRealClientsAreAnsweredByTheFastPath(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID := soldOutSale(t, s)
	vars := func(key string) map[string]any {
		return map[string]any{"input": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": key}}
	}
	buyers := make([]string, 3)
	for i := range buyers {
		buyers[i] = customer(t, s, testenv.Name()+"-"+string(rune('a'+i))+"@example.test")
	}
	// GraphQL answers the text once with its operation's name (Apollo, urql) and once
	// without (fetch, as written here), and the fast path learns both.
	byGraphQL := s.Send(t, buyers[0], apitest.Request{Query: placeOrderPrinted, OperationName: "PlaceOrder", Variables: vars("learn-0")})
	byGraphQL.WantCode(t, flashsale.ESOLDOUT)
	s.Send(t, buyers[0], apitest.Request{Query: placeOrderPrinted, Variables: vars("learn-1")}).WantCode(t, flashsale.ESOLDOUT)
	for _, f := range frontends {
		t.Run(f.name, func(t *testing.T) {
			before := metric(t, s, byFastPath)
			for i, buyer := range buyers {
				fast := s.HTTP(t, f.request(t, buyer, "PlaceOrder", placeOrderPrinted, vars(f.name+string(rune('0'+i))), nil))
				wantContentType(t, fast, f.wantType)
				if !bytes.Equal(fast.Body, byGraphQL.Body) || fast.Status != byGraphQL.Status {
					t.Errorf("by the fast path: %d %s\nby GraphQL: %d %s", fast.Status, fast.Body, byGraphQL.Status, byGraphQL.Body)
				}
			}
			if got := metric(t, s, byFastPath) - before; got != len(buyers) {
				t.Errorf("%d of %d refusals answered by the fast path; want all", got, len(buyers))
			}
		})
	}
	// Apollo's persisted-query link sends the hash alone, and the query with it once the
	// server says it does not know the hash; after that, the hash alone is enough.
	t.Run("Apollo Client 4 with persisted queries", func(t *testing.T) {
		const query = placeOrderPrinted + "\n"
		sum := sha256.Sum256([]byte(query))
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		r := s.HTTP(t, apollo.request(t, buyers[0], "PlaceOrder", "", vars("apq-0"), ext))
		if len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" {
			t.Fatalf("an unknown hash: %s; want PersistedQueryNotFound", r.Body)
		}
		before := metric(t, s, byFastPath)
		byGraphQL := s.HTTP(t, apollo.request(t, buyers[0], "PlaceOrder", query, vars("apq-1"), ext))
		byGraphQL.WantCode(t, flashsale.ESOLDOUT)
		for i, buyer := range buyers {
			fast := s.HTTP(t, apollo.request(t, buyer, "PlaceOrder", "", vars("apq-x"+string(rune('0'+i))), ext))
			wantContentType(t, fast, graphqlResponse)
			if !bytes.Equal(fast.Body, byGraphQL.Body) {
				t.Errorf("by its hash: %s\nby GraphQL: %s", fast.Body, byGraphQL.Body)
			}
		}
		if got := metric(t, s, byFastPath) - before; got != 3 {
			t.Errorf("%d of 3 refusals sent by hash answered by the fast path; want 3", got)
		}
	})
}

// Each client's product read is answered from the response cache once its response is
// cached, with the Content-Type it asked for.
func TestRealClientsReadsComeFromTheResponseCache(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Wanted", 1200, 5)
	vars := map[string]any{"id": p.ID}
	for _, f := range frontends {
		t.Run(f.name, func(t *testing.T) {
			var first *apitest.Response
			waitUntil(t, "a read answered from the response cache", func() (bool, string) {
				before := cachedResponses(t, s)
				first = s.HTTP(t, f.request(t, "", "Product", productPrinted, vars, nil))
				apitest.CheckErrors(t, first)
				return cachedResponses(t, s) > before, string(first.Body)
			})
			before := cachedResponses(t, s)
			for range 3 {
				again := s.HTTP(t, f.request(t, "", "Product", productPrinted, vars, nil))
				wantContentType(t, again, f.wantType)
				if !bytes.Equal(again.Body, first.Body) {
					t.Errorf("a cached response %s differs from the first %s", again.Body, first.Body)
				}
			}
			if got := cachedResponses(t, s) - before; got != 3 {
				t.Errorf("3 repeated reads: %d answered from the response cache; want 3", got)
			}
			var data struct {
				Product struct{ Name, Typename string }
			}
			first.MustData(t, &data)
			if data.Product.Name != "Wanted" {
				t.Errorf("read %s; want the product", first.Body)
			}
		})
	}
}

// The load generator's buyers send their orders as Apollo Client and urql do, and the
// burst after the sell-out is answered by the fast path: make bench measures the fast path the
// shop's clients get.
func TestTheLoadGeneratorsBurstIsAnsweredByTheFastPath(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t)
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		URL: s.URL, AdminEmail: apitest.AdminEmail, AdminPassword: apitest.AdminPassword,
		Buyers: 40, Attempts: 300, Concurrency: 16, Quantity: 10, PerUserLimit: 1,
		RegisterConcurrency: 8, PollConcurrency: 4, StartDelay: time.Millisecond,
		DrainTimeout: time.Minute, RequestTimeout: 10 * time.Second,
	}, nil)
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	if want := loadgen.Describe(loadgen.DefaultShapes); res.RequestShapes != want {
		t.Errorf("the run says its requests were %q; want %q", res.RequestShapes, want)
	}
	soldOut := res.Rejections[flashsale.ESOLDOUT]
	if !res.OK() || res.Accepted != 10 || soldOut == 0 {
		t.Fatalf("%d accepted, rejections %v, violations %q; want 10 accepted and the rest SOLD_OUT", res.Accepted, res.Rejections, res.Violations)
	}
	// The first refusals after the sell-out run GraphQL, which the fast path learns from; the
	// attempts already in flight then may too.
	fast := metric(t, s, byFastPath)
	t.Logf("%d of %d SOLD_OUT refusals answered by the fast path", fast, soldOut)
	if fast < soldOut/2 || fast > soldOut {
		t.Errorf("%d of %d SOLD_OUT refusals answered by the fast path; want most", fast, soldOut)
	}
}

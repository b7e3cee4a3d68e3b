package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/ratelimit"
)

// Every error the server writes, whoever writes it, comes in the media type the client asked
// for, with the status GraphQL over HTTP gives it: Apollo Client 4 reads the body of a 4xx
// as GraphQL errors only when it is application/graphql-response+json.
func TestErrorsComeInTheMediaTypeAskedFor(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(3)}))
	access, _, id := s.Register(t, "errors@example.test", "password-1", "Errors")
	expired := badTokens(t, s, access, id)["expired"]
	product := createProduct(t, s, "Asked", 100, 1)
	tooLarge := `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("x", graph.MaxBodyBytes) + `"}}`
	getMutation := "/query?query=" + url.QueryEscape(`mutation { logout(refreshToken: "x") }`)

	type request struct {
		name                     string
		method, target, ct, body string
		token                    string
		sends                    int // how many times, the last one checked (default 1)
		statusJSON, statusGraph  int // the status wanted for application/json and for graphql-response+json
		code                     string
	}
	for ci, c := range []request{
		{name: "a stale token on a private read", method: http.MethodPost, ct: "application/json", body: `{"query":"{ me { id } }"}`,
			token: expired, statusJSON: 401, statusGraph: 401, code: flashsale.EUNAUTHENTICATED},
		{name: "a body over the limit", method: http.MethodPost, ct: "application/json", body: tooLarge,
			statusJSON: 413, statusGraph: 413, code: flashsale.EINVALID},
		{name: "invalid JSON", method: http.MethodPost, ct: "application/json", body: `{"query":`,
			statusJSON: 400, statusGraph: 400, code: flashsale.EINVALID},
		{name: "a validation error", method: http.MethodPost, ct: "application/json", body: `{"query":"{ nope }"}`,
			statusJSON: 422, statusGraph: 400, code: flashsale.EINVALID},
		{name: "a validation error over GET", method: http.MethodGet, target: "/query?query=" + url.QueryEscape("{ nope }"),
			statusJSON: 422, statusGraph: 400, code: flashsale.EINVALID},
		{name: "a mutation over GET", method: http.MethodGet, target: getMutation,
			statusJSON: 405, statusGraph: 405, code: flashsale.EINVALID},
		{name: "a text/plain body", method: http.MethodPost, ct: "text/plain", body: `{"query":"{ __typename }"}`,
			statusJSON: 400, statusGraph: 400, code: flashsale.EINVALID},
		{name: "over the rate limit", method: http.MethodPost, ct: "application/json", sends: 4,
			body: fmt.Sprintf(`{"query":"{ product(id: %q) { id } }"}`, product.ID), statusJSON: 429, statusGraph: 429, code: flashsale.ERATELIMITED},
	} {
		for i, accept := range []string{"application/json", apolloAccept, urqlAccept, "*/*"} {
			wantType, wantStatus := "application/json", c.statusJSON
			if strings.HasPrefix(accept, graphqlResponse) {
				wantType, wantStatus = graphqlResponse, c.statusGraph
			}
			t.Run(c.name+", "+accept, func(t *testing.T) {
				t.Parallel()
				var r *apitest.Response
				for range max(c.sends, 1) {
					req := clientRequest(t, c.method, cmpOr(c.target, "/query"), c.ct, accept, c.token, c.body)
					req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.77.%d.%d", ci, i)) // a budget of its own
					r = s.HTTP(t, req)
				}
				if r.Status != wantStatus {
					t.Errorf("status %d; want %d (%s)", r.Status, wantStatus, r.Body)
				}
				wantContentType(t, r, wantType)
				if !r.JSON || len(r.Errors) == 0 {
					t.Fatalf("body %.300s; want GraphQL errors", r.Body)
				}
				r.WantCode(t, c.code)
				if r.Status == http.StatusMethodNotAllowed && r.Header.Get("Allow") != http.MethodPost {
					t.Errorf("405 with Allow %q; want POST", r.Header.Get("Allow"))
				}
				if r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			})
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// A client whose token lapsed between two pages still reads the catalog and the sales, as
// anyone would, and signs in again; whatever needs the viewer is refused with the token's
// own UNAUTHENTICATED error.
func TestAStaleTokenStillReadsTheCatalog(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	access, _, id := s.Register(t, "stale@example.test", "password-1", "Stale")
	saleID, _ := activeSale(t, s, "Still on sale", 10, 2)
	for name, token := range badTokens(t, s, access, id) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, f := range frontends {
				var data struct {
					Products struct {
						Edges []struct{ Node struct{ ID string } }
					}
					FlashSale struct{ ID, Status string }
				}
				query := "query Catalog($sale: ID!) {\n  products {\n    edges {\n      node {\n        id\n      }\n    }\n  }\n  flashSale(id: $sale) {\n    id\n    status\n  }\n}"
				r := s.HTTP(t, f.request(t, token, "Catalog", query, map[string]any{"sale": saleID}, nil))
				r.MustData(t, &data)
				if data.FlashSale.ID != saleID || len(data.Products.Edges) == 0 {
					t.Errorf("%s: the catalog read %s; want the sale and the products", f.name, r.Body)
				}
			}
			// A field only the admin sees, under a public read: the token's reason, not "sign in first".
			r := s.Do(t, token, `query($id: ID!) { flashSale(id: $id) { id stats { orders } } }`, map[string]any{"id": saleID})
			r.WantCode(t, flashsale.EUNAUTHENTICATED)
			if msg := r.Errors[0].Message; !strings.Contains(msg, "token") {
				t.Errorf("stats under a stale token: %q; want the token's reason", msg)
			}
			// An order needs the viewer: refused whole, 401, in the type Apollo asked for.
			r = s.HTTP(t, apollo.request(t, token, "PlaceOrder", placeOrderPrinted, map[string]any{"input": map[string]any{
				"flashSaleId": saleID, "quantity": 1, "idempotencyKey": "stale-" + name}}, nil))
			if r.Status != http.StatusUnauthorized {
				t.Errorf("an order with a stale token: status %d; want 401", r.Status)
			}
			r.WantCode(t, flashsale.EUNAUTHENTICATED)
			wantContentType(t, r, graphqlResponse)
			// Signing in again works with the stale token still attached, as a client's
			// link sends it.
			var login struct{ Login struct{ AccessToken string } }
			s.Do(t, token, `mutation { login(email: "stale@example.test", password: "password-1") { accessToken } }`, nil).MustData(t, &login)
			if login.Login.AccessToken == "" {
				t.Errorf("login with a stale token attached gave no token")
			}
		})
	}
}

// A websocket refused for its token closes with 4403 Forbidden and the reason, over both
// protocols, whether the token came in connection_init or on the upgrade request.
func TestAWebsocketRefusedForItsTokenSaysWhy(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	access, refresh, id := s.Register(t, "socket@example.test", "password-1", "Socket")
	expired := badTokens(t, s, access, id)["expired"]
	logout(t, s, refresh)
	for _, c := range []struct {
		name, token, reason string
		inHeader            bool
	}{
		{"expired", expired, "expired", false},
		{"garbage", "garbage", "invalid", false},
		{"signed out", access, "signed out", false},
		{"expired, on the upgrade", expired, "expired", true},
	} {
		for _, protocol := range []string{apitest.TransportWS, "graphql-ws"} {
			t.Run(c.name+", "+protocol, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				opts := &websocket.DialOptions{Subprotocols: []string{protocol}}
				payload := map[string]any{"Authorization": "Bearer " + c.token}
				if c.inHeader {
					opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + c.token}}
					payload = map[string]any{}
				}
				conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query", opts)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.CloseNow()
				if err := wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": payload}); err != nil {
					t.Fatal(err)
				}
				for {
					_, msg, err := conn.Read(ctx)
					var ce websocket.CloseError
					if errors.As(err, &ce) {
						if ce.Code != graph.CloseSessionEnded || !strings.Contains(ce.Reason, c.reason) {
							t.Errorf("closed with %d %q; want %d and a reason saying %q", ce.Code, ce.Reason, graph.CloseSessionEnded, c.reason)
						}
						return
					} else if err != nil {
						t.Fatalf("read: %v; want a close with 4403", err)
					}
					var m struct {
						Type    string
						Payload struct{ Message string }
					}
					json.Unmarshal(msg, &m)
					switch {
					case m.Type == "connection_ack":
						t.Fatalf("the socket was accepted; want it refused")
					case m.Type == "connection_error" && strings.Contains(m.Payload.Message, "code="):
						t.Errorf("connection_error %q shows the error's internals; want its message", m.Payload.Message)
					}
				}
			})
		}
	}
}

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// cannedServer answers every request with status and body, and records the last request.
func cannedServer(t *testing.T, status int, body string) (*httptest.Server, chan *http.Request) {
	t.Helper()
	reqs := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reqs <- r.Clone(context.Background()):
		default:
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

func newTestClient(t *testing.T, url string, timeout time.Duration) *Client {
	t.Helper()
	c, err := NewClient(url, 4, timeout)
	if err != nil {
		t.Fatalf("NewClient(%q): %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestDoErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		wantCode   string
		wantStatus int
	}{
		{"sold out", 200, `{"errors":[{"message":"sold out","path":["placeFlashSaleOrder"],"extensions":{"code":"SOLD_OUT"}}],"data":null}`, "SOLD_OUT", 200},
		{"first error wins", 200, `{"errors":[{"message":"a","extensions":{"code":"LIMIT_EXCEEDED"}},{"message":"b","extensions":{"code":"SOLD_OUT"}}]}`, "LIMIT_EXCEEDED", 200},
		{"partial data with error", 200, `{"data":{"placeFlashSaleOrder":null},"errors":[{"message":"x","extensions":{"code":"SALE_NOT_ACTIVE"}}]}`, "SALE_NOT_ACTIVE", 200},
		{"validation error on 422", 422, `{"errors":[{"message":"bad","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"data":null}`, "GRAPHQL_VALIDATION_FAILED", 422},
		{"rate limited on 429", 429, `{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED"}}]}`, "RATE_LIMITED", 429},
		{"error without code", 200, `{"errors":[{"message":"oops"}]}`, CodeNoCode, 200},
		{"not json on 502", 502, `<html>bad gateway</html>`, "HTTP_502", 502},
		{"not json on 200", 200, `hello`, CodeBadResponse, 200},
		{"json without errors on 500", 500, `{"data":null}`, "HTTP_500", 500},
		{"neither data nor errors", 200, `{}`, CodeBadResponse, 200},
		{"data of the wrong shape", 200, `{"data":{"placeFlashSaleOrder":"nope"}}`, CodeBadResponse, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := cannedServer(t, tt.status, tt.body)
			c := newTestClient(t, srv.URL, 5*time.Second)
			var out struct {
				PlaceFlashSaleOrder struct{ ID string } `json:"placeFlashSaleOrder"`
			}
			err := c.Do(t.Context(), "tok", placeMutation, map[string]any{"x": 1}, &out)
			if got := ErrorCode(err); got != tt.wantCode {
				t.Fatalf("ErrorCode(%v) = %q; want %q", err, got, tt.wantCode)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Status != tt.wantStatus {
				t.Errorf("status = %d; want %d", e.Status, tt.wantStatus)
			}
		})
	}
}

func TestDoDecodesDataAndSendsRequest(t *testing.T) {
	t.Parallel()
	srv, reqs := cannedServer(t, 200, `{"data":{"placeFlashSaleOrder":{"id":"o-1","quantity":1}}}`)
	c := newTestClient(t, srv.URL+"/", 5*time.Second)
	if got, want := c.Endpoint(), srv.URL+"/query"; got != want {
		t.Errorf("Endpoint() = %q; want %q", got, want)
	}
	var out struct {
		PlaceFlashSaleOrder struct {
			ID       string `json:"id"`
			Quantity int    `json:"quantity"`
		} `json:"placeFlashSaleOrder"`
	}
	vars := map[string]any{"input": map[string]any{"flashSaleId": "s1", "quantity": 1, "idempotencyKey": "k"}}
	if err := c.Do(t.Context(), "secret-token", placeMutation, vars, &out); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if out.PlaceFlashSaleOrder.ID != "o-1" || out.PlaceFlashSaleOrder.Quantity != 1 {
		t.Errorf("decoded %+v; want id o-1, quantity 1", out.PlaceFlashSaleOrder)
	}
	r := <-reqs
	if r.Method != http.MethodPost || r.URL.Path != "/query" {
		t.Errorf("request %s %s; want POST /query", r.Method, r.URL.Path)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer secret-token"; got != want {
		t.Errorf("Authorization = %q; want %q", got, want)
	}
	if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q; want %q", got, want)
	}
}

func TestDoSendsQueryAndVariables(t *testing.T) {
	t.Parallel()
	type sent struct {
		Query     string
		Variables map[string]any
		HasVars   bool
	}
	got := make(chan sent, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query     string          `json:"query"`
			Variables json.RawMessage `json:"variables"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		s := sent{Query: req.Query, HasVars: req.Variables != nil}
		_ = json.Unmarshal(req.Variables, &s.Variables)
		got <- s
		if r.Header.Get("Authorization") != "" {
			t.Errorf("Authorization = %q; want none for an empty token", r.Header.Get("Authorization"))
		}
		_, _ = io.WriteString(w, `{"data":{"__typename":"Query"}}`)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, 5*time.Second)
	for _, tc := range []struct {
		name string
		vars any
		want string // the variable a, "" for no variables at all
	}{
		{"map", map[string]any{"a": "b"}, "b"},
		{"struct", struct {
			A string `json:"a"`
		}{"c"}, "c"},
		{"none", nil, ""},
	} {
		if err := c.Do(t.Context(), "", typenameQuery, tc.vars, nil); err != nil {
			t.Fatalf("%s: Do: %v", tc.name, err)
		}
		req := <-got
		if req.Query != typenameQuery || (tc.want == "") == req.HasVars || (tc.want != "" && req.Variables["a"] != tc.want) {
			t.Errorf("%s: server got %+v; want query %q with variable a=%q", tc.name, req, typenameQuery, tc.want)
		}
	}
}

func TestDoTransportErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c := newTestClient(t, url, 5*time.Second)
		err := c.Do(t.Context(), "", typenameQuery, nil, nil)
		if got := ErrorCode(err); got != CodeTransport {
			t.Errorf("ErrorCode(%v) = %q; want %q", err, got, CodeTransport)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		c := newTestClient(t, srv.URL, 50*time.Millisecond)
		err := c.Do(t.Context(), "", typenameQuery, nil, nil)
		if got := ErrorCode(err); got != CodeTimeout {
			t.Errorf("ErrorCode(%v) = %q; want %q", err, got, CodeTimeout)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		srv, _ := cannedServer(t, 200, `{"data":{}}`)
		c := newTestClient(t, srv.URL, 5*time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := c.Do(ctx, "", typenameQuery, nil, nil)
		if got := ErrorCode(err); got != CodeCanceled {
			t.Errorf("ErrorCode(%v) = %q; want %q", err, got, CodeCanceled)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(%v, context.Canceled) = false; want true", err)
		}
	})
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&Error{Code: "SOLD_OUT"}, "SOLD_OUT"},
		{errors.Join(errors.New("wrapped"), &Error{Code: "CONFLICT"}), "CONFLICT"},
		{errors.New("plain"), CodeTransport},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestQueryEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "http://localhost:8080", want: "http://localhost:8080/query"},
		{in: "http://localhost:8080/", want: "http://localhost:8080/query"},
		{in: "http://127.0.0.1:8080/query", want: "http://127.0.0.1:8080/query"},
		{in: "http://[::1]:8080", want: "http://[::1]:8080/query"},
		{in: "http://127.0.0.2:9000/api?x=1", want: "http://127.0.0.2:9000/api/query"},
		{in: "http://example.com:8080", wantErr: true},
		{in: "http://10.0.0.1:8080", wantErr: true},
		{in: "http://192.168.1.10", wantErr: true},
		{in: "ftp://localhost/", wantErr: true},
		{in: "localhost:8080", wantErr: true},
	}
	for _, tt := range tests {
		got, err := queryEndpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("queryEndpoint(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// Each shape sends what its client library sends by default.
func TestDoSendsEachShapeAsItsClientDoes(t *testing.T) {
	t.Parallel()
	type sent struct {
		r    *http.Request
		body []byte
	}
	reqs := make(chan sent, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- sent{r.Clone(context.Background()), body}
		io.WriteString(w, `{"data":{"x":1}}`)
	}))
	t.Cleanup(srv.Close)
	const query, mutation = `query($id: ID!) { product(id: $id) { id } }`, `mutation($in: X!) { m(input: $in) { id } }`
	vars := map[string]any{"id": "prd_1"}
	for _, c := range []struct {
		shape                              Shape
		doc                                string
		method, accept, contentType, field string // field: a body field only this shape sends
	}{
		{Plain, query, http.MethodPost, "application/json", "application/json", ""},
		{Apollo, query, http.MethodPost, apolloAccept, "application/json", "extensions"},
		{Apollo, mutation, http.MethodPost, apolloAccept, "application/json", "extensions"},
		{URQL, query, http.MethodGet, urqlAccept, "", ""},
		{URQL, mutation, http.MethodPost, urqlAccept, "application/json", ""},
	} {
		c0 := newTestClient(t, srv.URL, time.Second).As(c.shape)
		if err := c0.Do(context.Background(), "", c.doc, vars, nil); err != nil {
			t.Fatalf("%v: %v", c.shape, err)
		}
		got := <-reqs
		r := got.r
		if r.Method != c.method || r.Header.Get("Accept") != c.accept || r.Header.Get("Content-Type") != c.contentType {
			t.Errorf("%v %.8s: sent %s Accept %q Content-Type %q; want %s %q %q", c.shape, c.doc, r.Method,
				r.Header.Get("Accept"), r.Header.Get("Content-Type"), c.method, c.accept, c.contentType)
		}
		if r.Method == http.MethodGet {
			var v map[string]any
			if r.URL.Query().Get("query") != c.doc || json.Unmarshal([]byte(r.URL.Query().Get("variables")), &v) != nil || v["id"] != "prd_1" {
				t.Errorf("%v: GET %s; want the query and variables in the URL", c.shape, r.URL.RawQuery)
			}
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(got.body, &body); err != nil || body["query"] != c.doc {
			t.Errorf("%v: body %v (%v); want the query", c.shape, body, err)
		}
		if ext, _ := body["extensions"].(map[string]any); c.field == "extensions" && ext["clientLibrary"] == nil {
			t.Errorf("%v: extensions %v; want clientLibrary", c.shape, body["extensions"])
		}
	}
}

package responsecache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/flashsale/flashsale/graph/media"
)

// bus is an Invalidator driven by the test. The real one (stores/redis.Invalidations, over
// Redis pub/sub) is exercised by the e2e tests; these pin down the cache's own rules.
type bus struct {
	gen   atomic.Uint64
	live  atomic.Bool
	clear func()
}

func (b *bus) Generation() uint64             { return b.gen.Load() }
func (b *bus) Live() bool                     { return b.live.Load() }
func (b *bus) Watch(_ []string, clear func()) { b.clear = clear }
func (b *bus) invalidate()                    { b.gen.Add(1); b.clear() }
func newBus() *bus                            { b := &bus{}; b.live.Store(true); return b }
func post(body string) *http.Request          { return postWith(body, "application/json") }

// memBody is a request body read into memory, as graph's body limit leaves it.
type memBody struct {
	*bytes.Reader
	b []byte
}

func (*memBody) Close() error    { return nil }
func (b *memBody) Bytes() []byte { return b.b }

func postWith(body, ct string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	r.Body = &memBody{Reader: bytes.NewReader([]byte(body)), b: []byte(body)}
	r.Header.Set("Content-Type", ct)
	return r
}

// executions counts the requests that reached GraphQL; during marks the response cacheable
// (as the watch extension does for a product read) and then calls during, if set.
type executions struct {
	n      int
	during func()
}

func (e *executions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.n++
	if f, ok := r.Context().Value(fillKey{}).(*fill); ok {
		f.read.Store(true)
	}
	if e.during != nil {
		e.during()
	}
	w.Header().Set("Content-Type", media.ResponseType(r.Header.Get("Accept"))) // as gqlgen does
	w.Write([]byte(`{"data":{"product":null}}`))
}

func serveTwice(t *testing.T, h http.Handler, r func() *http.Request) {
	t.Helper()
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r())
		if w.Body.String() != `{"data":{"product":null}}` {
			t.Fatalf("answered %q", w.Body)
		}
	}
}

func TestCacheKeepsAReadAndDropsItOnInvalidation(t *testing.T) {
	b, exec := newBus(), &executions{}
	c := New(b, nil)
	h := c.Serve(exec)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) })
	if exec.n != 1 {
		t.Fatalf("two identical reads executed %d times, want 1", exec.n)
	}
	b.invalidate()
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) })
	if exec.n != 2 {
		t.Errorf("after an invalidation, two reads executed %d times in all, want 2", exec.n)
	}
	// GraphQL reads a JSON body whatever its parameters, and refuses any other.
	serveTwice(t, h, func() *http.Request { return postWith(`{"query":"{ product }"}`, "application/json; charset=utf-8") })
	if exec.n != 2 {
		t.Errorf("a JSON body with a charset executed (%d executions, want 2)", exec.n)
	}
	serveTwice(t, h, func() *http.Request { return postWith(`{"query":"{ product }"}`, "text/plain") })
	if exec.n != 4 {
		t.Errorf("a text/plain body was answered from the cached response (%d executions, want 4)", exec.n)
	}
}

// urql sends queries as GET: the query string is the key, apart from POST bodies, and the
// Accept header must choose the cached response's Content-Type.
func TestCacheKeepsGETReads(t *testing.T) {
	b, exec := newBus(), &executions{}
	h := New(b, nil).Serve(exec)
	get := func(rawQuery, accept string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/query?"+rawQuery, nil)
			r.Header.Set("Accept", accept)
			return r
		}
	}
	serveTwice(t, h, get("query=%7B+product+%7D", media.URQLAccept))
	if exec.n != 1 {
		t.Fatalf("two identical GET reads executed %d times, want 1", exec.n)
	}
	// The cached response is application/graphql-response+json, which this Accept does not
	// choose: the first read executes, and its response is cached in place of the other.
	serveTwice(t, h, get("query=%7B+product+%7D", "application/json"))
	if exec.n != 2 {
		t.Errorf("GET reads asking for application/json executed %d times in all, want 2", exec.n)
	}
	serveTwice(t, h, func() *http.Request { return post("query=%7B+product+%7D") })
	if exec.n != 3 {
		t.Errorf("a POST body equal to a cached query string: %d executions in all, want 3 (the first not from the GET's)", exec.n)
	}
}

func TestCacheDoesNotKeepAReadThatAnInvalidationOvertook(t *testing.T) {
	b := newBus()
	exec := &executions{}
	exec.during = func() { b.gen.Add(1) } // a write elsewhere committed while the read ran
	h := New(b, nil).Serve(exec)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) })
	if exec.n != 2 {
		t.Errorf("reads overtaken by an invalidation executed %d times, want 2 (none kept)", exec.n)
	}
}

func TestCacheIsUnusedWhileInvalidationsAreNotHeard(t *testing.T) {
	b, exec := newBus(), &executions{}
	c := New(b, nil)
	h := c.Serve(exec)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) }) // cached
	b.live.Store(false)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) })
	if exec.n != 3 {
		t.Errorf("with the subscription down, reads executed %d times in all, want 3", exec.n)
	}
	b.live.Store(true)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"mutation { m }"}`) })
	if exec.n != 5 || c.Len() != 1 {
		t.Errorf("a mutation twice: %d executions in all (want 5), %d cached (want 1)", exec.n, c.Len())
	}
}

func TestCacheStartsOverPastItsBytes(t *testing.T) {
	b, exec := newBus(), &executions{}
	c := New(b, nil)
	c.maxBytes = 60 // two answers of 25 bytes and their ~25-byte keys do not fit
	h := c.Serve(exec)
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product a }"}`) })
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product b }"}`) })
	if exec.n != 2 || c.Len() != 1 || c.bytes != len(`{"query":"{ product b }"}`)+len(`{"data":{"product":null}}`) {
		t.Errorf("%d executions (want 2), %d cached (want 1), %d bytes counted", exec.n, c.Len(), c.bytes)
	}
}

// A request answered from the cache is counted in the GraphQL metrics under the label its
// execution had.
func TestCacheCountsItsAnswersUnderTheOperationsLabel(t *testing.T) {
	b := newBus()
	c := New(b, nil)
	var observed []string
	ext := c.Extension(GraphQL{
		Observe: func(op, outcome string, _ time.Duration) { observed = append(observed, op+" "+outcome) },
		Label:   func(*graphql.OperationContext) string { return "query:product" },
	})
	exec := &executions{}
	h := c.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What gqlgen does around an execution: the extension sees the response.
		ctx := graphql.WithOperationContext(r.Context(), &graphql.OperationContext{})
		ext.(graphql.ResponseInterceptor).InterceptResponse(ctx, func(context.Context) *graphql.Response {
			exec.ServeHTTP(w, r)
			return &graphql.Response{}
		})
	}))
	serveTwice(t, h, func() *http.Request { return post(`{"query":"{ product }"}`) })
	if exec.n != 1 {
		t.Fatalf("two identical reads executed %d times, want 1", exec.n)
	}
	if want := []string{"query:product ok"}; !slices.Equal(observed, want) {
		t.Errorf("observed %q, want %q", observed, want)
	}
}

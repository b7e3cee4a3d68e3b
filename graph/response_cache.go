package graph

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale/graph/media"
)

// Invalidator tells a cache above the stores when cached entries change: it is
// stores/redis.Invalidations, which hears every process's writes over Redis pub/sub.
type Invalidator interface {
	// Generation changes with every invalidation and every loss of the subscription.
	Generation() uint64
	// Live reports whether invalidations are being heard; nothing is served or kept otherwise.
	Live() bool
	// Watch calls clear on every invalidation of an entry of one of kinds.
	Watch(kinds []string, clear func())
}

// ResponseCache keeps whole responses to public reads, the product page a crowd refreshes
// before a sale, and answers the same request again without running GraphQL at all. A read
// of a cached product still costs the handler 1.5 times the floor in gqlgen's variables,
// field collection and marshalling (the cache bench's profile); a stored response costs a map
// lookup and a write.
//
// A response is kept only if it is the same for every viewer and every moment:
//   - the operation is a query whose root fields read one product or one sale, and every field
//     it resolved is in cacheableFields (stored columns: no live stock, no sale status, which
//     depends on the clock, nothing of a viewer);
//   - it has no errors and status 200;
//   - no invalidation of a product or sale was heard while it ran, and invalidations are
//     being heard at all.
//
// Any invalidation of a product or a sale, from any process, drops every kept response, as
// product writes are rare; entries also lapse after ttl, bounding the harm of an invalidation
// lost without the subscription noticing.
//
// It serves what frontend clients send by default: a POST's JSON body (Apollo Client, fetch)
// or a GET's query string (urql sends queries as GET), extensions and all, which are part of
// the key; the key is the body or query string as sent, and a kept response is served to a
// request of the same method whose Accept header GraphQL answers with the response's own
// Content-Type (media.ResponseType).
type ResponseCache struct {
	bus        Invalidator
	ttl        time.Duration
	maxEntries int
	maxBytes   int

	mu      sync.RWMutex
	entries map[string]*cachedResponse
	bytes   int // of the keys and bodies kept, bounded by maxBytes

	hits  prometheus.Counter
	stats func(op, outcome string, d time.Duration) // the GraphQL metrics, if any
}

type cachedResponse struct {
	get     bool   // the key is a GET's query string, not a POST's body
	header  string // the response's Content-Type
	body    []byte
	op      string // the metrics label of the operation
	expires time.Time
}

// Limits of what is kept: small request bodies (the key), small responses, a bounded number.
const (
	responseCacheTTL   = 5 * time.Second
	maxCachedRequest   = 4 << 10
	maxCachedResponse  = 64 << 10
	maxCachedResponses = 10_000
	maxCachedBytes     = 32 << 20
)

// cacheableFields are the fields a kept response may contain, as Object.field. A field left
// out makes the response uncacheable, so a field added to the schema is safe until added here.
var cacheableFields = map[[2]string]bool{
	{"Query", "product"}: true, {"Query", "flashSale"}: true,
	{"Product", "id"}: true, {"Product", "name"}: true, {"Product", "description"}: true,
	{"Product", "priceCents"}: true, {"Product", "createdAt"}: true, {"Product", "updatedAt"}: true,
	{"Product", "imageUrl"}: true, {"Product", "currency"}: true,
	{"FlashSale", "id"}: true, {"FlashSale", "product"}: true, {"FlashSale", "salePriceCents"}: true,
	{"FlashSale", "quantity"}: true, {"FlashSale", "perUserLimit"}: true,
	{"FlashSale", "startsAt"}: true, {"FlashSale", "endsAt"}: true,
}

// NewResponseCache returns a cache that trusts bus for invalidations of products and sales.
// reg (nil: none) gets its hit counter.
func NewResponseCache(bus Invalidator, reg prometheus.Registerer) *ResponseCache {
	c := &ResponseCache{bus: bus, ttl: responseCacheTTL, maxEntries: maxCachedResponses, maxBytes: maxCachedBytes,
		entries: map[string]*cachedResponse{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_graphql_cached_responses_total",
			Help: "GraphQL requests answered from the response cache, without execution (counted in flashsale_graphql_requests_total too).",
		})}
	if reg != nil {
		reg.MustRegister(c.hits)
	}
	bus.Watch([]string{"prd", "sal"}, c.clear) // the id prefixes of products and sales
	return c
}

// Len is the number of responses kept.
func (c *ResponseCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *ResponseCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.bytes = 0
}

// Serve answers a request it holds a response for and otherwise passes it on, watching
// whether its response may be kept. It sits after limitBody, whose body it reads.
func (c *ResponseCache) Serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, get, ok := cacheKey(r)
		// Only a request that may read a cacheable root field, and names no mutation, is
		// followed, so that orders and other reads pay nothing for the cache (a query that
		// merely says "mutation" in a string goes uncached: no harm).
		if !ok || len(key) > maxCachedRequest || !mayKeep(key) || !c.bus.Live() {
			next.ServeHTTP(w, r)
			return
		}
		if c.serveKept(w, r, key, get) {
			return
		}
		f := &fill{ResponseWriter: w, gen: c.bus.Generation()}
		next.ServeHTTP(f, r.WithContext(context.WithValue(r.Context(), fillKey{}, f)))
		c.keep(key, get, f)
	})
}

// cacheKey returns what a request is kept under: a POST's JSON body (as limitBody read it),
// or a GET's query string, which GraphQL reads in its place.
func cacheKey(r *http.Request) (key []byte, get bool, ok bool) {
	switch r.Method {
	case http.MethodPost:
		body, ok := r.Body.(*readBody)
		return body.bytes(), false, ok && media.IsJSONBody(r.Header.Get("Content-Type"))
	case http.MethodGet:
		// The GET transport reads the query string; one that is too long to keep is not
		// copied.
		if len(r.URL.RawQuery) > maxCachedRequest || r.Header.Get("Upgrade") != "" {
			return nil, true, false
		}
		return []byte(r.URL.RawQuery), true, true
	}
	return nil, false, false
}

// mayKeep is a cheap look at a body or query string for the root fields of cacheableFields
// or a persisted query's hash (a persisted query sent alone names no field).
func mayKeep(key []byte) bool {
	return !bytes.Contains(key, []byte("mutation")) &&
		(bytes.Contains(key, []byte("product")) || bytes.Contains(key, []byte("flashSale")) ||
			bytes.Contains(key, []byte("sha256Hash")))
}

func (c *ResponseCache) serveKept(w http.ResponseWriter, r *http.Request, key []byte, get bool) bool {
	start := time.Now()
	c.mu.RLock()
	e := c.entries[string(key)]
	c.mu.RUnlock()
	if e == nil || start.After(e.expires) || e.get != get || e.header != media.ResponseType(r.Header.Get("Accept")) {
		return false
	}
	w.Header().Set("Content-Type", e.header)
	w.Write(e.body)
	c.hits.Inc()
	if c.stats != nil {
		c.stats(e.op, "ok", time.Since(start))
	}
	return true
}

func (c *ResponseCache) keep(key []byte, get bool, f *fill) {
	if !f.cacheable() || f.status != 0 && f.status != http.StatusOK || f.body == nil ||
		!c.bus.Live() || c.bus.Generation() != f.gen {
		return
	}
	e := &cachedResponse{get: get, header: f.Header().Get("Content-Type"), body: f.body.Bytes(), op: f.op,
		expires: time.Now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bus.Generation() != f.gen { // an invalidation ran while we waited for the lock
		return
	}
	size := len(key) + len(e.body)
	if len(c.entries) >= c.maxEntries || c.bytes+size > c.maxBytes {
		// Clients choose the keys: past the bounds, start over rather than track recency.
		clear(c.entries)
		c.bytes = 0
	}
	if old, ok := c.entries[string(key)]; ok {
		c.bytes -= len(key) + len(old.body)
	}
	c.entries[string(key)] = e
	c.bytes += size
}

// fill follows one request that missed: the fields it resolved, its errors, and, once it
// is known to be cacheable, the bytes it writes.
type fill struct {
	http.ResponseWriter
	gen     uint64
	read    atomic.Bool // a cacheable root field ran
	spoiled atomic.Bool // anything else ran, or the response has errors
	op      string
	status  int
	body    *bytes.Buffer
}

type fillKey struct{}

func (f *fill) cacheable() bool { return f.read.Load() && !f.spoiled.Load() }

func (f *fill) WriteHeader(status int) {
	f.status = status
	f.ResponseWriter.WriteHeader(status)
}

// Write copies the response only once execution has said it may be kept (gqlgen writes the
// whole response after executing it), so that other responses cost no copy.
func (f *fill) Write(b []byte) (int, error) {
	if f.cacheable() {
		if f.body == nil {
			f.body = &bytes.Buffer{}
		}
		if f.body.Len()+len(b) <= maxCachedResponse {
			f.body.Write(b)
		} else {
			f.spoiled.Store(true)
		}
	}
	return f.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (f *fill) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// watch is the GraphQL side of the response cache: for a request being followed it watches
// every field resolved (only such requests pay for it) and the response's errors.
type watch struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
	graphql.ResponseInterceptor
} = watch{}

func (watch) ExtensionName() string                   { return "ResponseCacheWatch" }
func (watch) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext spoils anything but a query, and has a query's every field either
// be cacheable or spoil the response.
func (watch) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	f, ok := ctx.Value(fillKey{}).(*fill)
	if !ok {
		return nil
	}
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		f.spoiled.Store(true)
		return nil
	}
	inner := oc.ResolverMiddleware
	oc.ResolverMiddleware = func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		switch {
		case !cacheableFields[[2]string{fc.Object, fc.Field.Name}]:
			f.spoiled.Store(true)
		case fc.Object == "Query":
			f.read.Store(true)
		}
		return inner(ctx, next)
	}
	return nil
}

// InterceptResponse spoils a response with errors, and has a kept one remember its metrics
// label.
func (watch) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	f, ok := ctx.Value(fillKey{}).(*fill)
	if !ok || !graphql.HasOperationContext(ctx) {
		return resp
	}
	if resp == nil || len(resp.Errors) > 0 {
		f.spoiled.Store(true)
	} else if f.cacheable() {
		f.op = operationLabel(graphql.GetOperationContext(ctx))
	}
	return resp
}

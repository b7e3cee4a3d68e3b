// Package responsecache answers repeated public reads, such as the product page a crowd
// refreshes before a sale, with the bytes GraphQL produced the first time. Serve sits in
// front of the GraphQL handler; the gqlgen extension from Cache.Extension tells it which
// responses are the same for everyone and so may be cached; an Invalidator (stores/redis's
// Invalidations) tells it when products and sales change in any process.
package responsecache

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

// Invalidator tells the cache when cached entries change, in this process or another.
type Invalidator interface {
	// Generation changes with every invalidation and every loss of the subscription.
	Generation() uint64
	// Live reports whether invalidations are being heard; nothing is served or cached otherwise.
	Live() bool
	// Watch calls clear on every invalidation of an entry of one of kinds.
	Watch(kinds []string, clear func())
}

// Cache keeps whole responses to public product and sale reads and answers repeats without
// running GraphQL, whose parsing, field collection and marshalling cost far more than a map
// lookup. A response is kept only when it is the same for every viewer and every moment (see
// Extension), and only while invalidations are heard. Any invalidation of a product or sale
// drops every cached response, as such writes are rare; entries also lapse after a TTL in
// case an invalidation is lost without anyone noticing.
type Cache struct {
	bus        Invalidator
	ttl        time.Duration
	maxEntries int
	maxBytes   int

	mu      sync.RWMutex
	entries map[string]*cachedResponse
	bytes   int // of the keys and bodies cached, bounded by maxBytes

	hits    prometheus.Counter
	label   func(*graphql.OperationContext) string    // the GraphQL metrics' operation label
	observe func(op, outcome string, d time.Duration) // the GraphQL metrics, if any
}

type cachedResponse struct {
	get     bool   // the key is a GET's query string, not a POST's body
	header  string // the response's Content-Type
	body    []byte
	op      string // the metrics label of the operation
	expires time.Time
}

// Limits of what is cached: small request bodies (the key), small responses, a bounded number.
const (
	responseCacheTTL   = 5 * time.Second
	maxCachedRequest   = 4 << 10
	maxCachedResponse  = 64 << 10
	maxCachedResponses = 10_000
	maxCachedBytes     = 32 << 20
)

// cacheableFields are the fields a cached response may contain, as Object.field. A field left
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

// New returns a cache that trusts bus for invalidations of products and sales. reg (nil:
// none) gets its hit counter.
func New(bus Invalidator, reg prometheus.Registerer) *Cache {
	c := &Cache{bus: bus, ttl: responseCacheTTL, maxEntries: maxCachedResponses, maxBytes: maxCachedBytes,
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

// Len is the number of responses cached.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *Cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.bytes = 0
}

// Serve answers a request it holds a response for and otherwise passes it on, watching
// whether its response may be cached. It serves what frontend clients send by default: a
// POST's JSON body (Apollo Client, fetch) or a GET's query string (urql), extensions and
// all, as sent. A cached response is served only to a request of the same method whose
// Accept header GraphQL answers with the response's own Content-Type (media.ResponseType).
//
// A POST is served only if its body was read already (a Body with a Bytes method, as graph's
// body limit leaves it), so that the cache never copies a body.
func (c *Cache) Serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, get, ok := cacheKey(r)
		// Only a request that may read a cacheable root field, and names no mutation, is
		// followed, so that orders and other reads pay nothing for the cache (a query that
		// merely says "mutation" in a string goes uncached: no harm).
		if !ok || len(key) > maxCachedRequest || !mayCache(key) || !c.bus.Live() {
			next.ServeHTTP(w, r)
			return
		}
		if c.serveCached(w, r, key, get) {
			return
		}
		f := &fill{ResponseWriter: w, gen: c.bus.Generation()}
		next.ServeHTTP(f, r.WithContext(context.WithValue(r.Context(), fillKey{}, f)))
		c.add(key, get, f)
	})
}

// readBody is a request body already read into memory.
type readBody interface {
	Bytes() []byte
}

// cacheKey returns what a request is cached under: a POST's JSON body, or a GET's query
// string, which GraphQL reads in its place.
func cacheKey(r *http.Request) (key []byte, get bool, ok bool) {
	switch r.Method {
	case http.MethodPost:
		body, ok := r.Body.(readBody)
		if !ok || !media.IsJSONBody(r.Header.Get("Content-Type")) {
			return nil, false, false
		}
		return body.Bytes(), false, true
	case http.MethodGet:
		// The GET transport reads the query string; one that is too long to cache is not
		// copied.
		if len(r.URL.RawQuery) > maxCachedRequest || r.Header.Get("Upgrade") != "" {
			return nil, true, false
		}
		return []byte(r.URL.RawQuery), true, true
	}
	return nil, false, false
}

// mayCache is a cheap look at a body or query string for the root fields of cacheableFields
// or a persisted query's hash (a persisted query sent alone names no field).
func mayCache(key []byte) bool {
	return !bytes.Contains(key, []byte("mutation")) &&
		(bytes.Contains(key, []byte("product")) || bytes.Contains(key, []byte("flashSale")) ||
			bytes.Contains(key, []byte("sha256Hash")))
}

func (c *Cache) serveCached(w http.ResponseWriter, r *http.Request, key []byte, get bool) bool {
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
	if c.observe != nil {
		c.observe(e.op, "ok", time.Since(start))
	}
	return true
}

// add caches the response f followed, if it may be cached.
func (c *Cache) add(key []byte, get bool, f *fill) {
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

// Write copies the response only once execution has said it may be cached (gqlgen writes the
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

// GraphQL is what the cache needs of the GraphQL server behind it.
type GraphQL struct {
	// Observe (nil: none) counts a request the cache answered in the server's metrics, under
	// the label Label gave the operation when its response was cached.
	Observe func(op, outcome string, d time.Duration)
	Label   func(*graphql.OperationContext) string
}

// Extension returns the gqlgen extension that decides which responses may be cached; the
// GraphQL server behind Serve must use it. A response may be cached if it answers a query
// whose every field is in cacheableFields (stored columns: no live stock, no status that
// depends on the clock, nothing of a viewer) without errors and with status 200, and no
// invalidation was heard while it ran. Call it once, while building the server, before
// Serve answers anything.
func (c *Cache) Extension(g GraphQL) graphql.HandlerExtension {
	c.label, c.observe = g.Label, g.Observe
	return watch{c}
}

// watch is the GraphQL side of the response cache: for a request being followed it watches
// every field resolved (only such requests pay for it) and the response's errors.
type watch struct{ c *Cache }

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

// InterceptResponse spoils a response with errors, and has a cacheable one remember its
// metrics label.
func (w watch) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	f, ok := ctx.Value(fillKey{}).(*fill)
	if !ok || !graphql.HasOperationContext(ctx) {
		return resp
	}
	if resp == nil || len(resp.Errors) > 0 {
		f.spoiled.Store(true)
	} else if f.cacheable() && w.c.label != nil {
		f.op = w.c.label(graphql.GetOperationContext(ctx))
	}
	return resp
}

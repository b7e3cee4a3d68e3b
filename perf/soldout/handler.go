package soldout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/media"
)

// Checkout is what the handler asks the checkout (checkout.Service), with no I/O.
type Checkout interface {
	// RemembersASellOut reports cheaply whether any sale may be remembered as sold out:
	// until one is, the handler reads no request.
	RemembersASellOut() bool
	// RefusesFromMemory reports whether the checkout would refuse these arguments SOLD_OUT.
	RefusesFromMemory(sale flashsale.SaleID, quantity int, key string) bool
	// CountRefusedFromMemory counts a refusal answered by the handler as an attempt at the sale.
	CountRefusedFromMemory(sale flashsale.SaleID)
}

// Handler answers the burst of placeFlashSaleOrder requests after a sell-out by replaying
// GraphQL's own SOLD_OUT answer, since running GraphQL (decoding the variables, executing,
// presenting the error) is most of what such a request costs.
//
// Its extension learns the answer from GraphQL, keyed by query text and operation name (and
// by the text's sha256, for persisted queries), only for a mutation whose single root field
// is placeFlashSaleOrder(input: $variable): then the variables cannot change the answer. A
// later request is replayed only when it is one the handler reads exactly as GraphQL would
// and the checkout would refuse it from memory; anything else goes to GraphQL.
type Handler struct {
	checkout Checkout

	mu    sync.RWMutex
	known map[answerKey]*answer // by query text, and by its hash

	hits      prometheus.Counter
	observe   func(op, outcome string, d time.Duration) // the GraphQL metrics, if any
	persisted func(hash string) bool                    // whether GraphQL holds a persisted query
}

// answerKey is a query's text and operation name; or, with hash set, the hex sha256 of the
// text in place of it.
type answerKey struct {
	query, operationName string
	hash                 bool
}

// answer is a SOLD_OUT response GraphQL gave, and how to replay it.
type answer struct {
	variable string // the name of the input's variable
	body     []byte // GraphQL's answer
	op       string // the metrics label
}

// maxShapes bounds the query texts learned (clients send a handful), each kept under its
// text and its hash.
const maxShapes = 1000

// NewHandler returns a Handler that asks checkout; reg (nil: none) gets its counter. Give its
// Extension to the GraphQL server and put Serve in front of it.
func NewHandler(checkout Checkout, reg prometheus.Registerer) *Handler {
	h := &Handler{checkout: checkout, known: map[answerKey]*answer{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_sold_out_fast_path_refusals_total",
			Help: "placeFlashSaleOrder requests answered SOLD_OUT without running GraphQL (counted in flashsale_graphql_requests_total too).",
		})}
	if reg != nil {
		reg.MustRegister(h.hits)
	}
	return h
}

// Serve answers the requests it can and passes the rest on. It reads the viewer from the
// request's context and only a body already read into memory (one with a Bytes method, as
// graph's body limit leaves it), so it sits after authentication and the body limit.
func (h *Handler) Serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.replay(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// readBody is a request body already read into memory.
type readBody interface{ Bytes() []byte }

// placeRequest is a request body as the handler reads it. It fails on any field it does not
// know. Its field names match as gqlgen's own request struct does; the input's are read from
// a map, since encoding/json would match a struct's regardless of case, and GraphQL would
// refuse "flashSaleID".
type placeRequest struct {
	Query         string                                `json:"query"`
	OperationName string                                `json:"operationName"`
	Variables     map[string]map[string]json.RawMessage `json:"variables"`
	Extensions    map[string]json.RawMessage            `json:"extensions"`
}

// persistedQuery is the persisted-query extension (Apollo's automatic persisted queries).
type persistedQuery struct {
	Version    json.RawMessage `json:"version"`
	Sha256Hash string          `json:"sha256Hash"`
}

// key returns the key a request's answer is learned under, or false when GraphQL would not
// run its text: its persisted-query extension is malformed, names a hash that is not its
// query's, or a hash GraphQL does not hold.
func (h *Handler) key(req *placeRequest) (answerKey, bool) {
	raw, ok := req.Extensions["persistedQuery"]
	if !ok || string(raw) == "null" {
		return answerKey{query: req.Query, operationName: req.OperationName}, req.Query != ""
	}
	var pq persistedQuery
	if json.Unmarshal(raw, &pq) != nil || string(pq.Version) != "1" {
		return answerKey{}, false
	}
	if req.Query != "" {
		sum := sha256.Sum256([]byte(req.Query))
		return answerKey{query: req.Query, operationName: req.OperationName}, hex.EncodeToString(sum[:]) == pq.Sha256Hash
	}
	if h.persisted == nil || !h.persisted(pq.Sha256Hash) {
		return answerKey{}, false
	}
	return answerKey{query: pq.Sha256Hash, operationName: req.OperationName, hash: true}, true
}

// placeInput reads PlaceFlashSaleOrderInput as GraphQL would accept it: exactly its three
// fields, each non-null and of its JSON type, and a 32-bit integer quantity.
func placeInput(in map[string]json.RawMessage) (sale string, quantity int32, key string, ok bool) {
	if len(in) != 3 {
		return "", 0, "", false
	}
	var s, k *string
	var q *int32
	if json.Unmarshal(in["flashSaleId"], &s) != nil || json.Unmarshal(in["quantity"], &q) != nil ||
		json.Unmarshal(in["idempotencyKey"], &k) != nil || s == nil || q == nil || k == nil {
		return "", 0, "", false
	}
	return *s, *q, *k, true
}

// replay answers r with a learned answer, in the Content-Type GraphQL would choose for its
// Accept header, and reports whether it did.
func (h *Handler) replay(w http.ResponseWriter, r *http.Request) bool {
	start := time.Now()
	body, ok := r.Body.(readBody)
	if !ok || r.Method != http.MethodPost {
		return false
	}
	b := body.Bytes()
	if !bytes.Contains(b, []byte("placeFlashSaleOrder")) && !bytes.Contains(b, []byte("sha256Hash")) ||
		!media.IsJSONBody(r.Header.Get("Content-Type")) {
		return false
	}
	if _, ok := flashsale.ViewerFromContext(r.Context()); !ok || !h.checkout.RemembersASellOut() {
		return false // while units remain, orders pay nothing for the fast path
	}
	var req placeRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil || dec.More() || len(req.Variables) != 1 {
		return false
	}
	key, ok := h.key(&req)
	if !ok {
		return false
	}
	h.mu.RLock()
	known := h.known[key]
	h.mu.RUnlock()
	if known == nil {
		return false
	}
	saleID, quantity, idempotencyKey, ok := placeInput(req.Variables[known.variable])
	if !ok {
		return false
	}
	sale, err := flashsale.ParseSaleID(saleID)
	if err != nil || !h.checkout.RefusesFromMemory(sale, int(quantity), idempotencyKey) {
		return false
	}
	w.Header().Set("Content-Type", media.ResponseType(r.Header.Get("Accept")))
	w.Write(known.body)
	h.checkout.CountRefusedFromMemory(sale)
	h.hits.Inc()
	if h.observe != nil {
		h.observe(known.op, "error", time.Since(start))
	}
	return true
}

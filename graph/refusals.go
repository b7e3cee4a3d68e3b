package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/media"
)

// SoldOutMemory is what the door asks the checkout (checkout.Service), with no I/O.
type SoldOutMemory interface {
	// RemembersASellOut reports cheaply whether any sale may be remembered as sold out: until
	// one is, the door reads no request.
	RemembersASellOut() bool
	// RefusesFromMemory reports whether the checkout would refuse these arguments SOLD_OUT.
	RefusesFromMemory(sale flashsale.SaleID, quantity int, key string) bool
	// CountRefusedFromMemory counts a refusal answered at the door as an attempt at the sale.
	CountRefusedFromMemory(sale flashsale.SaleID)
}

// Refusals answers the stampede after a sell-out at the door. Once a sale has sold out,
// nearly every request is a placeFlashSaleOrder that the checkout refuses from memory, and
// running GraphQL for it (decoding and validating its variables by reflection, executing,
// presenting the error) is most of what it costs: at the handler, 1.6 times a
// { __typename }. Refusals replays GraphQL's own answer instead.
//
// It learns from GraphQL: when a request is answered SOLD_OUT, and its operation is a
// mutation whose only root field is placeFlashSaleOrder(input: $variable), with no
// directives, that answer is kept under the query text and operation name, and under the
// text's sha256 hash (a persisted query sent by its hash alone); it does not depend on the
// variables (the message, the path and the locations come from the text). A later request
// with the same text or hash, an authenticated viewer, and variables that hold just that
// input, with exactly its three fields of the right JSON types, is answered with those bytes
// if the checkout says it would refuse them from memory.
//
// It reads what frontend clients send by default: Apollo Client's and urql's Accept headers
// and a browser's */*, answered with the Content-Type GraphQL would choose
// (media.ResponseType), and request extensions, which GraphQL ignores but for a persisted
// query's: a hash sent with its query must be the query's, and one sent alone must be in
// the persisted queries' store, as GraphQL requires. Anything else, including whatever the
// strict reading is unsure of, goes to GraphQL, which answers as it always has.
type Refusals struct {
	memory SoldOutMemory

	mu    sync.RWMutex
	known map[refusalKey]*refusal // by query text, and by its hash

	hits      prometheus.Counter
	stats     func(op, outcome string, d time.Duration) // the GraphQL metrics, if any
	persisted func(hash string) bool                    // whether GraphQL knows a persisted query
}

// refusalKey is a query's text and operation name; or, with hash set, the hex sha256 of
// the text in place of it.
type refusalKey struct {
	query, operationName string
	hash                 bool
}

type refusal struct {
	variable string // the name of the input's variable
	body     []byte // GraphQL's answer
	op       string // the metrics label
}

// maxRefusalShapes bounds the query texts remembered (clients send a handful), each kept
// under its text and its hash.
const maxRefusalShapes = 1000

// maxRefusedRequest bounds the length of a query text and operation name remembered.
const maxRefusedRequest = 4 << 10

// NewRefusals returns Refusals that ask memory; reg (nil: none) gets its counter.
func NewRefusals(memory SoldOutMemory, reg prometheus.Registerer) *Refusals {
	r := &Refusals{memory: memory, known: map[refusalKey]*refusal{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_sold_out_refusals_at_the_door_total",
			Help: "placeFlashSaleOrder requests answered SOLD_OUT without running GraphQL (counted in flashsale_graphql_requests_total too).",
		})}
	if reg != nil {
		reg.MustRegister(r.hits)
	}
	return r
}

// Serve answers the requests it can and passes the rest on. It sits after withAuth and
// limitBody, whose viewer and body it reads.
func (rf *Refusals) Serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rf.answer(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// placeRequest is a request body as a refusal reads it. It fails on any field it does not
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

// refusalKey returns the key a request's answer is kept under, or false when GraphQL would
// not run its text: its persisted-query extension is malformed, names a hash that is not its
// query's, or a hash GraphQL does not hold.
func (rf *Refusals) refusalKey(req *placeRequest) (refusalKey, bool) {
	raw, ok := req.Extensions["persistedQuery"]
	if !ok || string(raw) == "null" {
		return refusalKey{query: req.Query, operationName: req.OperationName}, req.Query != ""
	}
	var pq persistedQuery
	if json.Unmarshal(raw, &pq) != nil || string(pq.Version) != "1" {
		return refusalKey{}, false
	}
	if req.Query != "" {
		sum := sha256.Sum256([]byte(req.Query))
		return refusalKey{query: req.Query, operationName: req.OperationName}, hex.EncodeToString(sum[:]) == pq.Sha256Hash
	}
	if rf.persisted == nil || !rf.persisted(pq.Sha256Hash) {
		return refusalKey{}, false
	}
	return refusalKey{query: pq.Sha256Hash, operationName: req.OperationName, hash: true}, true
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

func (rf *Refusals) answer(w http.ResponseWriter, r *http.Request) bool {
	start := time.Now()
	body, ok := r.Body.(*readBody)
	if !ok || r.Method != http.MethodPost || !bytes.Contains(body.b, []byte("placeFlashSaleOrder")) && !bytes.Contains(body.b, []byte("sha256Hash")) ||
		!media.IsJSONBody(r.Header.Get("Content-Type")) {
		return false
	}
	if _, ok := flashsale.ViewerFromContext(r.Context()); !ok || !rf.memory.RemembersASellOut() {
		return false // while units remain, orders pay nothing for the door
	}
	var req placeRequest
	dec := json.NewDecoder(bytes.NewReader(body.b))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil || dec.More() || len(req.Variables) != 1 {
		return false
	}
	key, ok := rf.refusalKey(&req)
	if !ok {
		return false
	}
	rf.mu.RLock()
	known := rf.known[key]
	rf.mu.RUnlock()
	if known == nil {
		return false
	}
	saleID, quantity, idempotencyKey, ok := placeInput(req.Variables[known.variable])
	if !ok {
		return false
	}
	sale, err := flashsale.ParseSaleID(saleID)
	if err != nil || !rf.memory.RefusesFromMemory(sale, int(quantity), idempotencyKey) {
		return false
	}
	w.Header().Set("Content-Type", media.ResponseType(r.Header.Get("Accept")))
	w.Write(known.body)
	rf.memory.CountRefusedFromMemory(sale)
	rf.hits.Inc()
	if rf.stats != nil {
		rf.stats(known.op, "error", time.Since(start))
	}
	return true
}

// learn is the GraphQL side: it keeps a SOLD_OUT answer to a lone placeFlashSaleOrder.
type learn struct{ rf *Refusals }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = learn{}

func (learn) ExtensionName() string                   { return "SoldOutRefusals" }
func (learn) Validate(graphql.ExecutableSchema) error { return nil }

func (l learn) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	// Only the answer to a sold-out sale is kept, not one such as "only 2 left".
	if resp == nil || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != flashsale.ESOLDOUT ||
		resp.Errors[0].Message != flashsale.ErrSoldOut.Message || string(resp.Data) != "null" ||
		!graphql.HasOperationContext(ctx) {
		return resp
	}
	oc := graphql.GetOperationContext(ctx)
	variable, ok := lonePlaceOrder(oc.Operation)
	if !ok {
		return resp
	}
	if len(oc.RawQuery)+len(oc.OperationName) > maxRefusedRequest {
		return resp // clients choose the texts: long ones are not kept
	}
	key := refusalKey{query: oc.RawQuery, operationName: oc.OperationName}
	l.rf.mu.RLock()
	known := l.rf.known[key] != nil
	l.rf.mu.RUnlock()
	if known {
		return resp
	}
	body, err := json.Marshal(resp) // as gqlgen's transport writes it
	if err != nil {
		return resp
	}
	sum := sha256.Sum256([]byte(oc.RawQuery))
	byHash := refusalKey{query: hex.EncodeToString(sum[:]), operationName: oc.OperationName, hash: true}
	r := &refusal{variable: variable, body: body, op: operationLabel(oc)}
	l.rf.mu.Lock()
	defer l.rf.mu.Unlock()
	if len(l.rf.known) >= 2*maxRefusalShapes {
		clear(l.rf.known)
	}
	l.rf.known[key] = r
	l.rf.known[byHash] = r
	return resp
}

// lonePlaceOrder reports whether op is `mutation ($v: PlaceFlashSaleOrderInput!) {
// placeFlashSaleOrder(input: $v) { ... } }`, possibly named and aliased, with nothing else
// that the variables could change: no directives, no other variable, no default.
func lonePlaceOrder(op *ast.OperationDefinition) (variable string, ok bool) {
	if op == nil || op.Operation != ast.Mutation || len(op.Directives) > 0 || len(op.SelectionSet) != 1 ||
		len(op.VariableDefinitions) != 1 {
		return "", false
	}
	f, isField := op.SelectionSet[0].(*ast.Field)
	if !isField || f.Name != "placeFlashSaleOrder" || len(f.Directives) > 0 || len(f.Arguments) != 1 ||
		f.Arguments[0].Name != "input" || f.Arguments[0].Value.Kind != ast.Variable {
		return "", false
	}
	v := op.VariableDefinitions[0]
	if v.Variable != f.Arguments[0].Value.Raw || v.DefaultValue != nil || len(v.Directives) > 0 ||
		v.Type == nil || !v.Type.NonNull || v.Type.NamedType != "PlaceFlashSaleOrderInput" {
		return "", false
	}
	return v.Variable, true
}

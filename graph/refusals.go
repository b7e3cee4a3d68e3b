package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
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
// directives, that answer is kept under the query text and operation name; it does not
// depend on the variables (the message, the path and the locations come from the text).
// A later request with the same text, an authenticated viewer, and variables that hold just
// that input, with exactly its three fields of the right JSON types, is answered with those
// bytes if the checkout says it would refuse them from memory. Anything else, including
// whatever the strict reading is unsure of, goes to GraphQL, which answers as it always has.
type Refusals struct {
	memory SoldOutMemory

	mu    sync.RWMutex
	known map[refusalKey]*refusal

	hits  prometheus.Counter
	stats func(op, outcome string, d time.Duration) // the GraphQL metrics, if any
}

type refusalKey struct{ query, operationName string }

type refusal struct {
	variable string // the name of the input's variable
	body     []byte // GraphQL's answer
	op       string // the metrics label
}

// maxRefusalShapes bounds the query texts remembered (clients send a handful).
const maxRefusalShapes = 1000

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
// know, as extensions (a persisted query). Its field names match as gqlgen's own request
// struct does; the input's are read from a map, since encoding/json would match a struct's
// regardless of case, and GraphQL would refuse "flashSaleID".
type placeRequest struct {
	Query         string                                `json:"query"`
	OperationName string                                `json:"operationName"`
	Variables     map[string]map[string]json.RawMessage `json:"variables"`
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
	if !ok || r.Method != http.MethodPost || !bytes.Contains(body.b, []byte("placeFlashSaleOrder")) ||
		r.Header.Get("Content-Type") != "application/json" {
		return false
	}
	// The answer's Content-Type is GraphQL's for these Accept values; others go to GraphQL.
	if accept := r.Header.Get("Accept"); accept != "" && accept != "application/json" {
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
	rf.mu.RLock()
	known := rf.known[refusalKey{req.Query, req.OperationName}]
	rf.mu.RUnlock()
	if known == nil {
		return false
	}
	saleID, quantity, key, ok := placeInput(req.Variables[known.variable])
	if !ok {
		return false
	}
	sale, err := flashsale.ParseSaleID(saleID)
	if err != nil || !rf.memory.RefusesFromMemory(sale, int(quantity), key) {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
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
	if len(oc.RawQuery)+len(oc.OperationName) > maxCachedRequest {
		return resp // clients choose the texts: long ones are not kept
	}
	key := refusalKey{oc.RawQuery, oc.OperationName}
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
	l.rf.mu.Lock()
	defer l.rf.mu.Unlock()
	if len(l.rf.known) >= maxRefusalShapes {
		clear(l.rf.known)
	}
	l.rf.known[key] = &refusal{variable: variable, body: body, op: operationLabel(oc)}
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

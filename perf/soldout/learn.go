package soldout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
)

// GraphQL is what the handler needs of the GraphQL server it stands in front of.
type GraphQL struct {
	// Persisted reports whether the server holds a persisted query, by its sha256 hash (nil:
	// a request that sends only a hash always goes to GraphQL).
	Persisted func(hash string) bool
	// Observe (nil: none) counts a request the handler answered in the server's metrics,
	// under the label Label gave the operation it learned.
	Observe func(op, outcome string, d time.Duration)
	Label   func(*graphql.OperationContext) string
}

// maxLearnedRequest bounds the query text and operation name learned: clients choose them.
const maxLearnedRequest = 4 << 10

// Extension returns the GraphQL server extension that learns the answers Serve replays. Call
// it once, while building the server, before Serve answers anything.
func (h *Handler) Extension(g GraphQL) graphql.HandlerExtension {
	h.persisted, h.observe = g.Persisted, g.Observe
	return learn{h: h, label: g.Label}
}

// learn keeps GraphQL's SOLD_OUT answer to a lone placeFlashSaleOrder.
type learn struct {
	h     *Handler
	label func(*graphql.OperationContext) string
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = learn{}

func (learn) ExtensionName() string                   { return "SoldOutFastPath" }
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
	if len(oc.RawQuery)+len(oc.OperationName) > maxLearnedRequest {
		return resp
	}
	key := answerKey{query: oc.RawQuery, operationName: oc.OperationName}
	h := l.h
	h.mu.RLock()
	known := h.known[key] != nil
	h.mu.RUnlock()
	if known {
		return resp
	}
	body, err := json.Marshal(resp) // as gqlgen's transport writes it
	if err != nil {
		return resp
	}
	sum := sha256.Sum256([]byte(oc.RawQuery))
	byHash := answerKey{query: hex.EncodeToString(sum[:]), operationName: oc.OperationName, hash: true}
	a := &answer{variable: variable, body: body}
	if l.label != nil {
		a.op = l.label(oc)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.known) >= 2*maxShapes {
		clear(h.known)
	}
	h.known[key] = a
	h.known[byHash] = a
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

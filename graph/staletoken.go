package graph

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale"
)

// staleToken is a request's bearer token that Authenticate refused (invalid, expired or
// revoked): the request runs as anonymous, and refused tells withAuth's writer to answer 401.
type staleToken struct {
	err     error // UNAUTHENTICATED, with the token's own message
	refused atomic.Bool
}

type staleTokenKey struct{}

// staleTokenFrom returns the context's refused token, if any.
func staleTokenFrom(ctx context.Context) (*staleToken, bool) {
	st, ok := ctx.Value(staleTokenKey{}).(*staleToken)
	return st, ok
}

// requireViewer is flashsale.RequireViewer, with the refused token's own error (it expired,
// it was revoked) in place of "sign in first" when the request sent one.
func requireViewer(ctx context.Context) (flashsale.Viewer, error) {
	v, err := flashsale.RequireViewer(ctx)
	if st, ok := staleTokenFrom(ctx); err != nil && ok {
		return v, st.err
	}
	return v, err
}

// publicRootFields are the root fields a request with a refused token is answered as
// anonymous for: reads of the catalog and the sales, the stock feeds, and the mutations that
// sign in. A root field added to the schema is refused to a stale token until added here.
var publicRootFields = map[[2]string]bool{
	{"Query", "product"}: true, {"Query", "products"}: true,
	{"Query", "flashSale"}: true, {"Query", "flashSales"}: true, {"Query", "flashSalesConnection"}: true,
	{"Query", "__typename"}: true, {"Query", "__schema"}: true, {"Query", "__type"}: true,
	{"Mutation", "register"}: true, {"Mutation", "login"}: true,
	{"Mutation", "refreshToken"}: true, {"Mutation", "logout"}: true, {"Mutation", "__typename"}: true,
	{"Subscription", "flashSaleStock"}: true, {"Subscription", "productStock"}: true,
}

// staleTokens refuses, with the token's error, an operation of a request whose token was
// refused unless every root field it runs is public.
type staleTokens struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = staleTokens{}

func (staleTokens) ExtensionName() string                   { return "StaleTokens" }
func (staleTokens) Validate(graphql.ExecutableSchema) error { return nil }

func (staleTokens) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	st, ok := staleTokenFrom(ctx)
	if !ok {
		return next(ctx)
	}
	if _, signedIn := flashsale.ViewerFromContext(ctx); signedIn || publicOperation(graphql.GetOperationContext(ctx)) {
		return next(ctx) // signed in over a websocket's connection_init, or public
	}
	st.refused.Store(true)
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, st.err)}})
}

// publicOperation reports whether every root field of the operation is public, fragments
// and @skip/@include applied.
func publicOperation(oc *graphql.OperationContext) bool {
	if oc == nil || oc.Operation == nil {
		return false
	}
	var object string
	switch oc.Operation.Operation {
	case ast.Query:
		object = "Query"
	case ast.Mutation:
		object = "Mutation"
	case ast.Subscription:
		object = "Subscription"
	}
	fields := graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{object})
	for _, f := range fields {
		if !publicRootFields[[2]string{object, f.Name}] {
			return false
		}
	}
	return len(fields) > 0
}

// staleWriter answers 401 in place of GraphQL's 200 when staleTokens refused the operation;
// the body is GraphQL's, the token's UNAUTHENTICATED error.
type staleWriter struct {
	http.ResponseWriter
	token       *staleToken
	wroteHeader bool
}

func (w *staleWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if status == http.StatusOK && w.token.refused.Load() {
		status = http.StatusUnauthorized
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *staleWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (websocket upgrades hijack it).
func (w *staleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

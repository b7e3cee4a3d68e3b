package graph

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/ratelimit"
)

// Rate limits are applied in three places.
//
// In front (limitInFront, after the viewer is known and before the body is read), every
// GraphQL request spends its client's Requests budget in this process, and a websocket
// connection its address's Websockets budget in this process and in Redis: a flood from one
// key is answered 429 without touching Redis.
//
// Once GraphQL has parsed the operation (limitShared marks the request, limitFields charges
// it), the request spends the same budget in Redis, and is answered 429 if refused. The
// answers served from memory before that, by the sold-out fast path and the response
// cache, are not counted there: each costs the server less than the Redis round
// trip that would count it, and uses nothing other replicas share, so the local budget,
// which they do spend, is all the protection they need. For the same reason neither is a
// query of introspection alone, such as { __typename }. Nor is a mutation whose every root
// field has a shared budget of its own (an order, a login), which is tighter: one round
// trip for an order instead of two.
//
// Inside GraphQL (limitFields), the mutations that take stock or check a password, and every
// subscription, spend a budget of their own; a refusal is that field's error, RATE_LIMITED.
// So does each query or mutation sent over a websocket, from the Requests budget.

// limitInFront spends the local Requests budget of each request, and the Websockets budget
// of each websocket connection, whose context it marks for limitFields.
func limitInFront(p *ratelimit.Policy, next http.Handler) http.Handler {
	if p == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var err error
		if isWebsocket(r) {
			err = p.Check(ctx, ratelimit.Websockets, ratelimit.AddrKey(ctx))
			r = r.WithContext(context.WithValue(ctx, overWebsocket{}, true))
		} else if key, exempt := ratelimit.KeyOf(ctx); !exempt {
			err = p.Local(ratelimit.Requests, key)
		}
		if err != nil {
			writeGraphQLError(w, r, http.StatusTooManyRequests, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitShared marks a request about to run GraphQL for limitFields to charge to the shared
// Requests budget, and turns its answer into a 429 with Retry-After when that refuses it.
func limitShared(p *ratelimit.Policy, next http.Handler) http.Handler {
	if !p.Enabled(ratelimit.Requests) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, exempt := ratelimit.KeyOf(r.Context())
		if exempt || isWebsocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		c := &sharedCharge{key: key}
		next.ServeHTTP(&refusalWriter{ResponseWriter: w, charge: c},
			r.WithContext(context.WithValue(r.Context(), sharedChargeKey{}, c)))
	})
}

type sharedChargeKey struct{}

// sharedCharge is an HTTP request's charge to the shared Requests budget: its key, and the
// refusal, if it was refused.
type sharedCharge struct {
	key     string
	refused error
}

// refusalWriter answers 429 with Retry-After in place of GraphQL's 200 when the request's
// charge was refused; the body is GraphQL's, the RATE_LIMITED error.
type refusalWriter struct {
	http.ResponseWriter
	charge      *sharedCharge
	wroteHeader bool
}

func (w *refusalWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if err := w.charge.refused; err != nil && status == http.StatusOK {
		w.Header().Set("Retry-After", strconv.Itoa(flashsale.RetryAfterSeconds(err)))
		status = http.StatusTooManyRequests
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sharedFree reports whether op need not spend the shared Requests budget: a mutation
// whose every root field spends a shared budget of its own, or a query of introspection
// alone ({ __typename }), which GraphQL answers from process memory.
func sharedFree(op *ast.OperationDefinition) bool {
	if len(op.SelectionSet) == 0 {
		return false
	}
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok {
			return false
		}
		switch {
		case op.Operation == ast.Query && strings.HasPrefix(f.Name, "__"):
		case op.Operation == ast.Mutation && (f.Name == "placeOrder" || f.Name == "placeFlashSaleOrder" ||
			f.Name == "login" || f.Name == "register"):
		default:
			return false
		}
	}
	return true
}

func isWebsocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// overWebsocket marks the context of a websocket connection.
type overWebsocket struct{}

// limitFields spends the budgets of the root fields that have one, and the Requests budget
// of each query or mutation sent over a websocket, which no HTTP request carried.
type limitFields struct{ p *ratelimit.Policy }

var _ interface {
	graphql.HandlerExtension
	graphql.FieldInterceptor
	graphql.OperationInterceptor
} = limitFields{}

func (limitFields) ExtensionName() string                   { return "RateLimits" }
func (limitFields) Validate(graphql.ExecutableSchema) error { return nil }

func (l limitFields) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Object != "Mutation" && fc.Object != "Subscription" {
		return next(ctx)
	}
	if err := checkField(ctx, l.p, fc); err != nil {
		return nil, err
	}
	return next(ctx)
}

func (l limitFields) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil || op.Operation == ast.Subscription {
		return next(ctx)
	}
	var err error
	if c, ok := ctx.Value(sharedChargeKey{}).(*sharedCharge); ok { // over HTTP, spent locally in front
		if !sharedFree(op) {
			err = l.p.Shared(ctx, ratelimit.Requests, c.key)
			c.refused = err
		}
	} else if ctx.Value(overWebsocket{}) != nil {
		if key, exempt := ratelimit.KeyOf(ctx); !exempt {
			err = l.p.Check(ctx, ratelimit.Requests, key)
		}
	}
	if err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, err)}})
	}
	return next(ctx)
}

func checkField(ctx context.Context, p *ratelimit.Policy, fc *graphql.FieldContext) error {
	if fc.Object == "Subscription" {
		if key, exempt := ratelimit.KeyOf(ctx); !exempt {
			return p.Check(ctx, ratelimit.Subscriptions, key)
		}
		return nil
	}
	switch fc.Field.Name {
	case "placeOrder", "placeFlashSaleOrder":
		// An anonymous order is refused UNAUTHENTICATED by the resolver, at no cost.
		if v, ok := flashsale.ViewerFromContext(ctx); ok && v.Role != flashsale.RoleAdmin {
			key, _ := ratelimit.KeyOf(ctx)
			return p.CheckSoon(ctx, ratelimit.Orders, key)
		}
	case "login", "register":
		if err := p.Check(ctx, ratelimit.Passwords, ratelimit.AddrKey(ctx)); err != nil {
			return err
		}
		if email := emailArg(fc.Args); email != "" {
			return p.Check(ctx, ratelimit.Accounts, ratelimit.AccountKey(email))
		}
	}
	return nil
}

// emailArg is the account a login or register names.
func emailArg(args map[string]any) string {
	switch v := args["input"].(type) {
	case flashsale.RegisterInput:
		return v.Email
	case *flashsale.RegisterInput:
		if v != nil {
			return v.Email
		}
	}
	email, _ := args["email"].(string)
	return email
}

package graph

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/ravilushqa/otelgqlgen"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceHTTP starts a span for each HTTP request, continuing the caller's trace when it sends
// a W3C traceparent. Websockets are left out (a span as long as the connection tells nothing;
// each subscription's operation has its own), and so are the health and metrics endpoints
// that probes call every few seconds.
func traceHTTP(tp trace.TracerProvider, next http.Handler) http.Handler {
	return otelhttp.NewHandler(next, "http",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return r.Header.Get("Upgrade") == ""
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

// nameOperation names an operation's span after its kind and root fields, as the metrics
// label it ("mutation:placeFlashSaleOrder"), when the client gave it no name.
type nameOperation struct{}

func (nameOperation) ExtensionName() string                   { return "NameOperation" }
func (nameOperation) Validate(graphql.ExecutableSchema) error { return nil }

func (nameOperation) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc.OperationName == "" {
		ctx = otelgqlgen.SetOperationName(ctx, operationLabel(oc))
	}
	return next(ctx)
}

// credentialFields are the root fields whose arguments are passwords or tokens: they get no
// span of their own, whose attributes would carry the arguments.
var credentialFields = map[string]bool{"login": true, "register": true, "refreshToken": true, "logout": true}

// traceGraphQL is gqlgen's OpenTelemetry tracer: a span for each operation, and one for each
// root field (placeFlashSaleOrder, product, …) under it. Nested fields are left to the
// dataloaders' statements, and variables are never recorded, since they carry passwords and
// tokens.
func traceGraphQL(tp trace.TracerProvider) []graphql.HandlerExtension {
	return []graphql.HandlerExtension{nameOperation{}, otelgqlgen.Middleware(
		otelgqlgen.WithTracerProvider(tp),
		otelgqlgen.WithoutVariables(),
		otelgqlgen.WithCreateSpanFromFields(func(fc *graphql.FieldContext) bool {
			switch fc.Object { // the root types: a root field
			case "Query", "Mutation", "Subscription":
				return !credentialFields[fc.Field.Name]
			}
			return false
		}),
	)}
}

package graph

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/perf/responsecache"
	"github.com/flashsale/flashsale/perf/soldout"
	"github.com/flashsale/flashsale/ratelimit"
	"github.com/flashsale/flashsale/resolvers"
)

// Config is what the GraphQL server needs.
type Config struct {
	Resolver *resolvers.Resolver
	Auth     flashsale.AuthService
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Stores feed the per-response dataloaders; NoBatching turns batching off (benchmarks).
	Stores     flashsale.Stores
	NoBatching bool
	// ComplexityLimit and MaxDepth default to the constants of the same names. A
	// ComplexityLimit raised above the default (tests and benchmarks that send deliberately
	// large queries) raises MaxQueryBytes, MaxTokens and MaxSelections in proportion.
	ComplexityLimit int
	MaxDepth        int
	// QueryCacheBytes and PersistedQueriesBytes bound the parsed-query cache and the
	// persisted queries' store; zero means DefaultQueryCacheBytes and
	// DefaultPersistedQueriesBytes.
	QueryCacheBytes       int
	PersistedQueriesBytes int
	// ResponseCache (nil: none) is told which responses it may cache; NewHTTPHandler serves them.
	ResponseCache *responsecache.Cache
	// SoldOut (nil: none) learns GraphQL's SOLD_OUT answers; NewHTTPHandler replays them.
	SoldOut *soldout.Handler
	// NoIntrospection refuses __schema and __type queries (production's default).
	NoIntrospection bool
	// WebsocketInitTimeout closes a websocket that has not sent connection_init in time, and
	// SubscriptionsPerWebsocket caps one websocket's subscriptions (zero: no cap).
	WebsocketInitTimeout      time.Duration
	SubscriptionsPerWebsocket int
	// Limits (nil: none) are the rate limits of the mutations and subscriptions that have
	// budgets of their own; NewHTTPHandler applies the rest.
	Limits *ratelimit.Policy
	// Tracer (nil: none) traces each operation and its root fields (tracing.go).
	Tracer trace.TracerProvider
	// Drain (nil: none) closes the websockets of a replica going out of service with
	// CloseServiceRestart.
	Drain *Drain
}

// Default sizes of the caches of parsed and persisted queries. A parsed document of this
// schema's clients costs a few to a few tens of kilobytes (documentBytes), a persisted
// query its text: each holds thousands of distinct documents, far more than the clients
// send.
const (
	DefaultQueryCacheBytes       = 32 << 20
	DefaultPersistedQueriesBytes = 8 << 20
)

// NewGraphQL returns the GraphQL handler: explicit transports (never NewDefaultServer), a
// parsed-query cache, automatic persisted queries, the query limits, complexity limit,
// metrics, and the error presenter.
func NewGraphQL(cfg Config) *handler.Server {
	if cfg.ComplexityLimit == 0 {
		cfg.ComplexityLimit = ComplexityLimit
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = MaxDepth
	}
	if cfg.QueryCacheBytes == 0 {
		cfg.QueryCacheBytes = DefaultQueryCacheBytes
	}
	if cfg.PersistedQueriesBytes == 0 {
		cfg.PersistedQueriesBytes = DefaultPersistedQueriesBytes
	}
	schema := generated.NewExecutableSchema(generated.Config{
		Resolvers:  cfg.Resolver,
		Directives: generated.DirectiveRoot{HasRole: hasRole, Authenticated: authenticated},
		Complexity: complexity(),
	})
	srv := handler.New(schema)
	srv.AddTransport(sessionWebsocket{transport.Websocket{
		// Legacy graphql-ws gets "ka" keep-alives; graphql-transport-ws gets pings, and a
		// client that does not pong within two intervals is dropped, so dead connections
		// (a laptop lid closed mid-sale) do not hold subscriptions open.
		KeepAlivePingInterval: 10 * time.Second,
		PingPongInterval:      25 * time.Second,
		InitTimeout:           cfg.WebsocketInitTimeout,
		InitFunc:              withSubscriptionBudget(cfg.SubscriptionsPerWebsocket, websocketInit(cfg.Auth)),
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{
			// Browsers send cookies with a cross-site websocket, but this API reads its token
			// from connection_init, never from a cookie, so any origin is safe to accept.
			InsecureSkipVerify: true,
		}},
	}, cfg.Drain})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	parsed := newByteCache(cfg.QueryCacheBytes, documentBytes)
	persisted := persistedQueries{newByteCache(cfg.PersistedQueriesBytes, queryBytes)}
	srv.SetQueryCache(parsed)
	scale := max(1, cfg.ComplexityLimit/ComplexityLimit)
	srv.SetParserTokenLimit(MaxTokens * scale)
	// Suggestions ("Did you mean …?") cost an edit distance to every field of the type for
	// each unknown one, and name fields that production hides from introspection.
	srv.SetDisableSuggestion(true)
	if cfg.NoIntrospection {
		srv.Use(noIntrospection{})
	} else {
		srv.Use(extension.Introspection{})
	}
	if cfg.SubscriptionsPerWebsocket > 0 {
		srv.Use(subscriptionCap{})
	}
	srv.Use(persisted) // before the limits, which read the query it finds
	srv.Use(queryLimits{
		maxQueryBytes: MaxQueryBytes * scale, maxTokens: MaxTokens * scale,
		maxSelections: MaxSelections * scale, maxDepth: cfg.MaxDepth,
		passwordFields: passwordFields(schema.Schema()), parsed: parsed.Contains,
	})
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.Use(persisted.record()) // after every mutator that may refuse the operation
	var observe func(op, outcome string, d time.Duration)
	if cfg.Registry != nil {
		m := newMetrics(cfg.Registry)
		observe = m.observe
		registerCacheMetrics(cfg.Registry, parsed, persisted.cache)
		srv.Use(m)
	}
	if cfg.Tracer != nil {
		for _, ext := range traceGraphQL(cfg.Tracer) {
			srv.Use(ext)
		}
	}
	srv.AroundResponses(loaders.PerResponse(cfg.Stores, !cfg.NoBatching))
	srv.AroundFields(internalErrors(cfg.Log))
	srv.Use(staleTokens{})
	if cfg.Limits != nil {
		srv.Use(limitFields{cfg.Limits})
	}
	if cfg.ResponseCache != nil {
		srv.Use(cfg.ResponseCache.Extension(responsecache.GraphQL{Observe: observe, Label: operationLabel}))
	}
	if cfg.SoldOut != nil {
		srv.Use(cfg.SoldOut.Extension(soldout.GraphQL{
			Persisted: persisted.cache.Contains, Observe: observe, Label: operationLabel,
		}))
	}
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic(cfg.Log))
	return srv
}

// websocketInit authenticates a websocket from the connection_init payload's Authorization,
// or failing that the upgrade request's. A signed-in connection runs in the viewer's session,
// and so ends with it (sessionWebsocket). A refused token closes the socket with
// graphql-transport-ws's 4403 Forbidden and the reason, which graphql-ws clients show.
func websocketInit(auth flashsale.AuthService) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		header := payload.Authorization()
		if header == "" {
			if s, ok := payload["authorization"].(string); ok {
				header = s
			}
		}
		if header == "" {
			if st, ok := staleTokenFrom(ctx); ok { // the upgrade's own Authorization was refused
				return refuseInit(ctx, st.err)
			}
			return ctx, nil, nil
		}
		v, err := auth.Authenticate(ctx, bearer(header))
		if err != nil {
			return refuseInit(ctx, err)
		}
		ctx = inSession(ctx, auth, v)
		// No ack payload: echoing the init payload would send the bearer token back.
		return flashsale.NewContextWithViewer(ctx, v), nil, nil
	}
}

// refuseInit closes a websocket whose connection_init was refused with CloseSessionEnded
// (4403 Forbidden) and err's message, which is also the legacy protocol's connection_error.
func refuseInit(ctx context.Context, err error) (context.Context, *transport.InitPayload, error) {
	msg := flashsale.ErrorMessage(err)
	ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, CloseSessionEnded), msg)
	return ctx, nil, errors.New(msg)
}

// withSubscriptionBudget gives each websocket its own count of open subscriptions.
func withSubscriptionBudget(most int, init transport.WebsocketInitFunc) transport.WebsocketInitFunc {
	if most <= 0 {
		return init
	}
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		ctx = context.WithValue(ctx, subscriptionBudgetKey{}, &subscriptionBudget{most: int32(most)})
		return init(ctx, payload)
	}
}

func bearer(header string) string {
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:])
	}
	return strings.TrimSpace(header)
}

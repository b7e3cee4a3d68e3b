package graph

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
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
	Stores     loaders.Stores
	NoBatching bool
	// ComplexityLimit and MaxDepth default to the constants of the same names.
	ComplexityLimit int
	MaxDepth        int
	// ResponseCache (nil: none) is told which responses it may keep; NewHTTPHandler serves them.
	ResponseCache *ResponseCache
	// Refusals (nil: none) learns GraphQL's SOLD_OUT answers; NewHTTPHandler replays them.
	Refusals *Refusals
	// NoIntrospection refuses __schema and __type queries (production's default).
	NoIntrospection bool
	// WebsocketInitTimeout closes a websocket that has not sent connection_init in time, and
	// SubscriptionsPerWebsocket caps one websocket's subscriptions (zero: no cap).
	WebsocketInitTimeout      time.Duration
	SubscriptionsPerWebsocket int
	// Limits (nil: none) are the rate limits of the mutations and subscriptions that have
	// budgets of their own; NewHTTPHandler applies the rest.
	Limits *ratelimit.Policy
}

// NewGraphQL returns the GraphQL handler: explicit transports (never NewDefaultServer), a
// parsed-query cache, automatic persisted queries, complexity and depth limits, metrics, and
// the error presenter.
func NewGraphQL(cfg Config) *handler.Server {
	if cfg.ComplexityLimit == 0 {
		cfg.ComplexityLimit = ComplexityLimit
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = MaxDepth
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
	}})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.NoIntrospection {
		srv.Use(noIntrospection{})
	} else {
		srv.Use(extension.Introspection{})
	}
	if cfg.SubscriptionsPerWebsocket > 0 {
		srv.Use(subscriptionCap{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(shapeLimit{maxDepth: cfg.MaxDepth, maxSelections: max(MaxSelections, cfg.ComplexityLimit)}) // before the complexity walk
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	if cfg.Registry != nil {
		m := newMetrics(cfg.Registry)
		srv.Use(m)
		if cfg.ResponseCache != nil {
			cfg.ResponseCache.stats = m.observe
		}
		if cfg.Refusals != nil {
			cfg.Refusals.stats = m.observe
		}
	}
	srv.AroundResponses(loaders.PerResponse(cfg.Stores, !cfg.NoBatching))
	srv.AroundFields(internalErrors(cfg.Log))
	if cfg.Limits != nil {
		srv.Use(limitFields{cfg.Limits})
	}
	if cfg.ResponseCache != nil {
		srv.Use(watch{})
	}
	if cfg.Refusals != nil {
		srv.Use(learn{cfg.Refusals})
	}
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic(cfg.Log))
	return srv
}

// websocketInit authenticates a websocket from the connection_init payload's Authorization.
// A signed-in connection runs in the viewer's session, and so ends with it (sessionWebsocket).
func websocketInit(auth flashsale.AuthService) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		header := payload.Authorization()
		if header == "" {
			if s, ok := payload["authorization"].(string); ok {
				header = s
			}
		}
		if header == "" {
			return ctx, nil, nil
		}
		v, err := auth.Authenticate(ctx, bearer(header))
		if err != nil {
			// 4403 Forbidden is graphql-transport-ws's close code for a refused init.
			ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, CloseSessionEnded), flashsale.ErrorMessage(err))
			return ctx, nil, err
		}
		ctx = inSession(ctx, auth, v)
		// No ack payload: echoing the init payload would send the bearer token back.
		return flashsale.NewContextWithViewer(ctx, v), nil, nil
	}
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

package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/perf/responsecache"
	"github.com/flashsale/flashsale/perf/soldout"
	"github.com/flashsale/flashsale/resolvers"
	"github.com/flashsale/flashsale/stockfeed"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/redis"
)

// API is the GraphQL server with everything it is connected to.
type API struct {
	*Deps
	Auth *auth.Service
	// Revocations tells the other replicas of sign-ins revoked here, and this one of theirs.
	Revocations *redis.Revocations

	listener net.Listener
	server   *http.Server
	served   chan error
	// ops serves /metrics and detailed readiness on OPS_HTTP_ADDR, when set.
	ops         *http.Server
	opsListener net.Listener
	opsServed   chan error
	aborted     bool // by Abort: nothing is left to shut down gracefully
	// drain takes the replica out of service before it stops (Drain).
	drain     *graph.Drain
	stopOnce  sync.Once
	stopErr   error
	closeOnce sync.Once
}

// Prepare creates the shard databases that are missing and migrates every shard.
func Prepare(ctx context.Context, cfg Config) error {
	if err := postgres.CreateDatabases(ctx, cfg.DatabaseShards); err != nil {
		return err
	}
	return postgres.Migrate(ctx, cfg.DatabaseShards)
}

// NewAPI connects to the dependencies, ensures the admin account and assembles the handler.
// The databases must be prepared. opts are the tests' and the benchmarks' (Options).
func NewAPI(ctx context.Context, cfg Config, log *slog.Logger, opts Options) (_ *API, err error) {
	if err := cfg.CheckProduction(); err != nil {
		return nil, err
	}
	cfg = cfg.withServingDefaults()
	if cfg.JWTSecret == DevJWTSecret {
		log.Warn("JWT_SECRET is not set: using the development secret; APP_ENV=production refuses it")
	}
	if cfg.AdminPassword == DevAdminPassword {
		log.Warn("ADMIN_PASSWORD is not set: the admin signs in with the development password; APP_ENV=production refuses it")
	}
	deps, err := OpenDeps(ctx, cfg, log, opts)
	if err != nil {
		return nil, err
	}
	a := &API{Deps: deps, drain: graph.NewDrain()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	accessTTL := cmp.Or(cfg.AccessTokenTTL, 15*time.Minute)
	a.Revocations = redis.NewRevocations(a.Redis, cfg.redisPrefix(), accessTTL, log)
	a.Auth, err = auth.NewService(a.Stores.Users, postgres.NewTokenStore(a.DB), auth.Config{
		Secret: []byte(cfg.JWTSecret), BcryptCost: cfg.BcryptCost, AccessTTL: accessTTL, Revocations: a.Revocations,
	}, log)
	if err != nil {
		return nil, err
	}
	a.Revocations.Listen(a.Auth.Revoked)
	// Through the cache when there is one, so that a promoted account's cached role goes.
	admins, ok := a.Stores.Users.(auth.AdminStore)
	if !ok {
		return nil, fmt.Errorf("ensure admin account: the user store %T cannot update credentials", a.Stores.Users)
	}
	if _, err := a.Auth.EnsureAdmin(ctx, admins, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return nil, fmt.Errorf("ensure admin account: %w", err)
	}

	reg := a.Registry
	reg.MustRegister(a.PlacementSteps)
	var responses *responsecache.Cache
	if a.Invalidations != nil && !opts.NoResponseCache { // invalidations are heard: whole responses may be cached
		responses = responsecache.New(a.Invalidations, reg)
	}
	var soldOut *soldout.Handler
	if !opts.NoSoldOutFastPath {
		soldOut = soldout.NewHandler(a.Checkout, reg)
	}
	limits := newRateLimits(cfg, a.Redis, log, reg)
	gql := graph.NewGraphQL(graph.Config{
		Resolver: &resolvers.Resolver{
			Auth: a.Auth, Users: a.Stores.Users, Catalog: a.Stores.Products, OrderStore: a.Stores.Orders,
			Checkout: a.Checkout, NotificationReader: postgres.NewNotificationStore(a.DB),
			StockFeed: stockfeed.NewStock(stockSource{a.StockBus}, cfg.StockUpdatesPerSecond), OrderFeed: a.OrderBus,
		},
		Auth:                  a.Auth,
		Log:                   log,
		Registry:              reg,
		Stores:                a.Stores,
		ComplexityLimit:       cfg.ComplexityLimit,
		QueryCacheBytes:       cfg.QueryCacheBytes,
		PersistedQueriesBytes: cfg.PersistedQueriesBytes,
		NoBatching:            opts.NoBatching,
		ResponseCache:         responses,
		SoldOut:               soldOut,
		NoIntrospection:       cfg.NoIntrospection,
		Limits:                limits,

		WebsocketInitTimeout:      cfg.WebsocketInitTimeout,
		SubscriptionsPerWebsocket: cfg.SubscriptionsPerWebsocket,
		Tracer:                    a.Tracer,
		Drain:                     a.drain,
	})
	handler := graph.NewHTTPHandler(graph.HTTPConfig{
		GraphQL:        gql,
		Auth:           a.Auth,
		Log:            log,
		Gatherer:       reg,
		Checks:         a.readyChecks(),
		ResponseCache:  responses,
		SoldOut:        soldOut,
		Limits:         limits,
		TrustedProxies: cfg.trustedProxies(),
		Tracer:         a.Tracer,
		// A complexity limit raised for deliberately large queries raises the body limit
		// with the query limits it scales (graph.Config).
		MaxBodyBytes: graph.MaxBodyBytes * max(1, cfg.ComplexityLimit/graph.ComplexityLimit),
		Serving: graph.Serving{
			ReadTimeout:          cfg.ReadTimeout,
			WriteTimeout:         cfg.WriteTimeout,
			WebsocketsPerAddress: cfg.WebsocketsPerAddress,
			CORSOrigins:          cfg.CORSOrigins,
			NoPlayground:         cfg.NoPlayground,
			OpsElsewhere:         cfg.OpsAddr != "",
		},
	})
	a.server = &http.Server{
		Handler: a.drain.Serve(a.Burst.Track(handler)),
		// Headers must arrive within the read timeout; the body's deadline is set per request
		// (graph.Serving), since a server-wide one would also cut websockets.
		ReadHeaderTimeout: cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.OpsAddr != "" {
		a.ops = &http.Server{
			Handler:           graph.OpsMux(a.readyChecks(), reg),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	return a, nil
}

// Start listens on the configured address (":0" picks a free port) and serves in the
// background until Shutdown.
func (a *API) Start() error {
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.HTTPAddr, err)
	}
	a.listener = ln
	a.served = make(chan error, 1)
	go func() { a.served <- a.server.Serve(ln) }()
	a.Log.Info("api listening", "addr", ln.Addr().String())
	if a.ops != nil {
		ops, err := net.Listen("tcp", a.Config.OpsAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.Config.OpsAddr, err)
		}
		a.opsListener = ops
		a.opsServed = make(chan error, 1)
		go func() { a.opsServed <- a.ops.Serve(ops) }()
		a.Log.Info("operator endpoints listening", "addr", ops.Addr().String())
	}
	return nil
}

// OpsURL is the base URL of the operators' endpoints, or "" when they share the API's port.
func (a *API) OpsURL() string {
	if a.opsListener == nil {
		return ""
	}
	return "http://" + a.opsListener.Addr().String()
}

// URL is the base URL the API serves on, once started.
func (a *API) URL() string {
	addr := a.listener.Addr().(*net.TCPAddr)
	return fmt.Sprintf("http://127.0.0.1:%d", addr.Port)
}

// BrowseURL is the base URL a person on this machine opens: HTTP_ADDR's host when it names
// one, localhost when the API listens on every interface, with the port it really got.
func (a *API) BrowseURL() string {
	host, _, _ := net.SplitHostPort(a.Config.HTTPAddr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	port := a.listener.Addr().(*net.TCPAddr).Port
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// Handler is what the API serves, for benchmarks that call it without a network between.
func (a *API) Handler() http.Handler { return a.server.Handler }

// Done is closed with the server's error if it stops serving on its own.
func (a *API) Done() <-chan error { return a.served }

// readyChecks are the API's readiness checks: its dependencies', and whether it drains.
func (a *API) readyChecks() map[string]graph.Check {
	all := checks(a.checks())
	all["serving"] = a.drain.Check
	return all
}

// Drain stops the API as SIGTERM asks, losing no request: /readyz fails at once while the API
// goes on serving for delay, its answers asking clients to close their connections, so that
// load balancers move new requests and connections to the other replicas; then its
// websockets close with 1012 (Service Restart), which clients answer by reconnecting
// elsewhere, and Shutdown waits for the requests in flight and closes the connections to the
// dependencies.
func (a *API) Drain(ctx context.Context, delay time.Duration) error {
	a.drain.Begin()
	a.Log.Info("draining: not ready, serving until the load balancers notice", "delay", delay)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	return a.Shutdown(ctx)
}

// StopServing closes the websockets with 1012 (Service Restart), stops accepting requests
// and waits for those in flight (until ctx ends); the connections stay open for workers
// sharing them.
func (a *API) StopServing(ctx context.Context) error {
	if a.server == nil || a.listener == nil || a.aborted {
		return nil
	}
	// Once: Drain stops the API, and the caller that started it may stop it again.
	a.stopOnce.Do(func() { a.stopErr = a.stopServing(ctx) })
	return a.stopErr
}

func (a *API) stopServing(ctx context.Context) error {
	// Before the server's Shutdown, which neither waits for nor closes hijacked connections.
	err := a.drain.CloseSockets(ctx)
	err = errors.Join(err, a.server.Shutdown(ctx))
	if serveErr := <-a.served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if a.opsListener != nil {
		err = errors.Join(err, a.ops.Shutdown(ctx))
		if serveErr := <-a.opsServed; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
	}
	return err
}

// Abort closes the listener and every client connection at once, without waiting for the
// requests in flight, as a crash looks to clients. Fault drills use it; Shutdown still
// closes the dependencies afterwards.
func (a *API) Abort() error {
	if a.server == nil || a.listener == nil {
		return nil
	}
	a.aborted = true
	if a.opsListener != nil {
		a.ops.Close()
	}
	return a.server.Close()
}

// Shutdown stops serving and closes every connection to the dependencies.
func (a *API) Shutdown(ctx context.Context) error {
	err := a.StopServing(ctx)
	a.Close()
	return err
}

// Close stops the API's listeners on Redis and closes every connection to the dependencies,
// once StopServing has returned and the workers sharing the connections have stopped.
func (a *API) Close() {
	a.closeOnce.Do(func() {
		if a.Revocations != nil {
			a.Revocations.Close()
		}
		a.Deps.Close()
	})
}

func checks(m map[string]func(context.Context) error) map[string]graph.Check {
	out := make(map[string]graph.Check, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/resolvers"
	"github.com/flashsale/flashsale/stores/postgres"
)

// API is the GraphQL server with everything it is connected to.
type API struct {
	Config Config
	Log    *slog.Logger
	DB     *postgres.DB
	Auth   *auth.Service

	listener net.Listener
	server   *http.Server
	served   chan error
}

// Prepare creates the shard databases that are missing and migrates every shard.
func Prepare(ctx context.Context, cfg Config) error {
	if err := postgres.CreateDatabases(ctx, cfg.DatabaseShards); err != nil {
		return err
	}
	return postgres.Migrate(ctx, cfg.DatabaseShards)
}

// NewAPI connects to the dependencies, ensures the admin account and assembles the handler.
// The databases must be prepared. dbOpts lets tests trace statements.
func NewAPI(ctx context.Context, cfg Config, log *slog.Logger, dbOpts postgres.Options) (_ *API, err error) {
	if cfg.JWTSecret == DevJWTSecret {
		log.Warn("JWT_SECRET is not set: using the development secret; set it in production")
	}
	a := &API{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.DB, err = postgres.Open(ctx, cfg.DatabaseShards, dbOpts); err != nil {
		return nil, err
	}
	users := postgres.NewUserStore(a.DB)
	a.Auth, err = auth.NewService(users, postgres.NewTokenStore(a.DB), auth.Config{
		Secret: []byte(cfg.JWTSecret), BcryptCost: cfg.BcryptCost,
	}, log)
	if err != nil {
		return nil, err
	}
	if _, err := a.Auth.EnsureAdmin(ctx, users, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return nil, fmt.Errorf("ensure admin account: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gql := graph.NewGraphQL(graph.Config{
		Resolver: &resolvers.Resolver{Auth: a.Auth, Users: users, Catalog: postgres.NewProductStore(a.DB)},
		Auth:     a.Auth,
		Log:      log,
		Registry: reg,
	})
	handler := graph.NewHTTPHandler(graph.HTTPConfig{
		GraphQL:  gql,
		Auth:     a.Auth,
		Log:      log,
		Gatherer: reg,
		Checks:   map[string]graph.Check{"postgres": a.DB.Ping},
	})
	a.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
	return nil
}

// URL is the base URL the API serves on, once started.
func (a *API) URL() string {
	addr := a.listener.Addr().(*net.TCPAddr)
	return fmt.Sprintf("http://127.0.0.1:%d", addr.Port)
}

// Done is closed with the server's error if it stops serving on its own.
func (a *API) Done() <-chan error { return a.served }

// Shutdown stops accepting requests, waits for those in flight (until ctx ends) and closes
// every connection to the dependencies.
func (a *API) Shutdown(ctx context.Context) error {
	var err error
	if a.server != nil && a.listener != nil {
		err = a.server.Shutdown(ctx)
		if serveErr := <-a.served; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
	}
	a.close()
	return err
}

func (a *API) close() {
	if a.DB != nil {
		a.DB.Close()
	}
}

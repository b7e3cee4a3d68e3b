// Package apitest starts the real API on fresh test shards and speaks GraphQL over HTTP to
// it, for end-to-end tests. Every Server has its own databases, listens on a free port and
// stops when its test ends; a missing PostgreSQL, Redis or RabbitMQ fails the test.
package apitest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/testenv"
)

// The admin account every Server ensures at start.
const (
	AdminEmail    = "admin@example.test"
	AdminPassword = "admin-test-password"
)

// Server is a running API and a client for it.
type Server struct {
	// URL is the base URL, such as "http://127.0.0.1:41234".
	URL string
	// API is the running assembly; tests may reach its DB and Auth.
	API *app.API
	// Config and Options are what the API was started with.
	Config  app.Config
	Options app.Options

	client   *client
	logs     *recorder
	adminMu  sync.Mutex
	adminTok string
}

type options struct {
	shards    int
	counter   *StatementCounter
	configure []func(*app.Config)
	options   []func(*app.Options)
}

// Option changes how Start builds the server.
type Option func(*options)

// WithShards sets the number of shards (default 4).
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithTracer counts every statement the API sends, per shard, into c.
func WithTracer(c *StatementCounter) Option { return func(o *options) { o.counter = c } }

// WithOptions lets a test turn a mechanism off (app.Options) before the API starts.
func WithOptions(f func(*app.Options)) Option {
	return func(o *options) { o.options = append(o.options, f) }
}

// WithConfig lets a test change the config before the API starts.
func WithConfig(f func(*app.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, f) }
}

// Start builds a config on fresh shards, starts the API on 127.0.0.1:0 and shuts it down
// when the test ends. The test fails at its end if the API logged a panic.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{shards: 4}
	for _, opt := range opts {
		opt(&o)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	cfg := app.Config{
		HTTPAddr:       "127.0.0.1:0",
		DatabaseShards: testenv.Shards(t, o.shards),
		// Tests run side by side against one PostgreSQL of 100 connections.
		DatabasePoolSize: testenv.PoolSize,
		RedisURL:         testenv.RedisURL(t),
		// With TEST_REDIS_CLUSTER set, the API runs on the test binary's Redis Cluster.
		Redis:          app.RedisSettings{ClusterAddrs: testenv.RedisClusterAddrs(t)},
		RabbitMQURL:    testenv.RabbitURL(t),
		JWTSecret:      hex.EncodeToString(secret),
		AdminEmail:     AdminEmail,
		AdminPassword:  AdminPassword,
		ReservationTTL: 15 * time.Minute,
		Namespace:      testenv.Name(), // Redis keys and broker names of this test alone
		BcryptCost:     bcrypt.MinCost, // hashing is most of a registration; tests need not pay for it
	}
	for _, f := range o.configure {
		f(&cfg)
	}
	logs := newRecorder(t)
	log := slog.New(logs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var appOpts app.Options
	if o.counter != nil {
		appOpts.DB = o.counter.Options()
	}
	for _, f := range o.options {
		f(&appOpts)
	}
	api, err := app.NewAPI(ctx, cfg, log, appOpts)
	if err != nil {
		t.Fatalf("apitest: start the API: %v", err)
	}
	if err := api.Start(); err != nil {
		api.Shutdown(ctx)
		t.Fatalf("apitest: start the API: %v", err)
	}
	s := &Server{URL: api.URL(), API: api, Config: cfg, Options: appOpts, logs: logs}
	s.client = newClient()
	t.Cleanup(func() {
		s.client.close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := api.Shutdown(ctx); err != nil {
			t.Errorf("apitest: shut the API down: %v", err)
		}
		logs.stop()
		if panics := logs.matching("panic"); len(panics) > 0 {
			t.Errorf("apitest: the API logged %d panic(s):\n%s", len(panics), shorten(panics[0]))
		}
	})
	return s
}

// Logs returns the API's log lines at or above level so far, as text.
func (s *Server) Logs(level slog.Level) []string { return s.logs.atLeast(level) }

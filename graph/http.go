package graph

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashsale/flashsale"
)

// MaxBodyBytes bounds a GraphQL request body; larger ones get 413 before any parsing.
const MaxBodyBytes = 1 << 20

// Check reports whether one dependency is reachable.
type Check func(ctx context.Context) error

// HTTPConfig is what the HTTP surface needs besides the GraphQL handler.
type HTTPConfig struct {
	GraphQL  http.Handler
	Auth     flashsale.AuthService
	Log      *slog.Logger
	Gatherer prometheus.Gatherer
	Checks   map[string]Check // by dependency name, for /readyz
	Extra    map[string]http.Handler
}

// NewHTTPHandler routes /query, the playground, health, readiness and metrics.
func NewHTTPHandler(cfg HTTPConfig) http.Handler {
	mux := OpsMux(cfg.Checks, cfg.Gatherer)
	mux.Handle("/query", withAuth(cfg.Auth, http.MaxBytesHandler(cfg.GraphQL, MaxBodyBytes)))
	mux.Handle("GET /{$}", playground.Handler("Flash sale", "/query"))
	for pattern, h := range cfg.Extra {
		mux.Handle(pattern, h)
	}
	return withRequestLog(cfg.Log, mux)
}

// OpsMux serves what every process serves for its operators: /healthz (alive), /readyz
// (every dependency reachable) and /metrics (Prometheus). Workers serve only this.
func OpsMux(checks map[string]Check, gatherer prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", readiness(checks))
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

// withAuth puts the viewer of a valid bearer token in the context. A request with an invalid
// token is refused outright with UNAUTHENTICATED rather than served as anonymous, so a
// client with an expired token learns it at once instead of seeing empty answers.
func withAuth(auth flashsale.AuthService, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		v, err := auth.Authenticate(r.Context(), bearer(header))
		if err != nil {
			writeGraphQLError(w, http.StatusUnauthorized, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(flashsale.NewContextWithViewer(r.Context(), v)))
	})
}

func writeGraphQLError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message":    flashsale.ErrorMessage(err),
		"extensions": map[string]string{"code": flashsale.ErrorCode(err)},
	}}})
}

// readiness runs every check in parallel with a deadline and answers 503 naming the failures.
func readiness(checks map[string]Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		status := map[string]string{}
		for name, check := range checks {
			wg.Go(func() {
				result := "ok"
				if err := check(ctx); err != nil {
					result = err.Error()
				}
				mu.Lock()
				status[name] = result
				mu.Unlock()
			})
		}
		wg.Wait()
		code := http.StatusOK
		for _, s := range status {
			if s != "ok" {
				code = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(status)
	})
}

type requestIDKey struct{}

// withRequestLog gives each request an id (echoed in X-Request-Id) and logs failures and slow
// requests; successful fast ones are left to the metrics, since at flash-sale rates a log line
// per request would cost more than the request.
func withRequestLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = rand.Text()[:16]
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		if d := time.Since(start); rec.status >= 500 || d > time.Second {
			log.Warn("request", "id", id, "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", d)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (websocket upgrades hijack it).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

package graph

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/media"
	"github.com/flashsale/flashsale/perf/responsecache"
	"github.com/flashsale/flashsale/perf/soldout"
	"github.com/flashsale/flashsale/ratelimit"
)

// MaxBodyBytes bounds a GraphQL request body; larger ones get 413 before any parsing. It is
// twice MaxQueryBytes, room for the longest document and as much in variables (a product's
// description is at most 10,000 bytes): reading and decoding the JSON of a body costs the
// server in proportion to its length, and a refused megabyte would cost it many requests'
// worth (BenchmarkAbuse in e2e).
const MaxBodyBytes = 2 * MaxQueryBytes

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
	// ResponseCache (nil: none) answers repeated public reads; NewGraphQL must be given it too.
	ResponseCache *responsecache.Cache
	// SoldOut (nil: none) is the sold-out fast path; NewGraphQL must be given it too.
	SoldOut *soldout.Handler
	// MaxBodyBytes bounds a request's body (zero: MaxBodyBytes).
	MaxBodyBytes int
	// Serving bounds what one client may hold: timeouts, websockets, cross-origin callers.
	Serving Serving
	// TrustedProxies are the peers whose X-Forwarded-For names the client (nil: none).
	TrustedProxies []netip.Prefix
	// Limits (nil: none) are the rate limits; NewGraphQL must be given them too.
	Limits *ratelimit.Policy
	// Tracer (nil: none) traces each request (tracing.go).
	Tracer trace.TracerProvider
}

// NewHTTPHandler routes /query, the playground, the live stock page, health, readiness and
// metrics.
func NewHTTPHandler(cfg HTTPConfig) http.Handler {
	mux := OpsMux(cfg.Checks, cfg.Gatherer)
	if cfg.Serving.OpsElsewhere {
		mux = publicHealth(cfg.Checks)
	}
	query := limitShared(cfg.Limits, withErrorCodes(cfg.GraphQL))
	if cfg.ResponseCache != nil {
		query = cfg.ResponseCache.Serve(query)
	}
	if cfg.SoldOut != nil {
		query = cfg.SoldOut.Serve(query)
	}
	query = withAuth(cfg.Auth, limitInFront(cfg.Limits, limitBody(cmp.Or(cfg.MaxBodyBytes, MaxBodyBytes), query)))
	query = cfg.Serving.capWebsockets(query)
	mux.Handle("/query", cfg.Serving.cors(query))
	if !cfg.Serving.NoPlayground {
		mux.Handle("GET /{$}", playground.Handler("Flash sale", "/query"))
	}
	mux.Handle("GET /live", LivePage())
	for pattern, h := range cfg.Extra {
		mux.Handle(pattern, h)
	}
	h := cfg.Serving.withDeadlines(withClientAddress(cfg.TrustedProxies, withRequestLog(cfg.Log, mux)))
	if cfg.Tracer != nil {
		h = traceHTTP(cfg.Tracer, h)
	}
	return h
}

// limitBody answers 413 to a body over most bytes. It reads the body up front because
// gqlgen would turn a cut-off read into a 200 with an error.
func limitBody(most int, next http.Handler) http.Handler {
	tooLarge := flashsale.Errorf(flashsale.EINVALID, "request body is larger than %d bytes", most)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > int64(most) {
			writeGraphQLError(w, r, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.Header.Get("Upgrade") == "" {
			body, err := io.ReadAll(io.LimitReader(r.Body, int64(most)+1))
			if len(body) > most {
				writeGraphQLError(w, r, http.StatusRequestEntityTooLarge, tooLarge)
				return
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				writeGraphQLError(w, r, http.StatusRequestTimeout, flashsale.Errorf(flashsale.EINVALID, "the request body did not arrive in time"))
				return
			} else if err != nil {
				writeGraphQLError(w, r, http.StatusBadRequest, flashsale.Errorf(flashsale.EINVALID, "could not read the request body"))
				return
			}
			r.Body = &readBody{Reader: bytes.NewReader(body), b: body}
		}
		next.ServeHTTP(w, r)
	})
}

// readBody is a request body limitBody has read, which the response cache and the sold-out
// fast path read without copying it.
type readBody struct {
	*bytes.Reader
	b []byte
}

func (*readBody) Close() error { return nil }

// Bytes returns the body, or nil for a nil readBody.
func (b *readBody) Bytes() []byte {
	if b == nil {
		return nil
	}
	return b.b
}

// withErrorCodes gives a code to the errors gqlgen's transports write themselves, without
// the error presenter (an unsupported method or content type, a mutation over GET): every
// error the API sends carries an extensions.code, in the media type the client asked for.
// Only responses of status 400 and above are held back to be read; successful ones stream
// through untouched.
func withErrorCodes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w, accept: r.Header.Get("Accept")}
		next.ServeHTTP(cw, r)
		cw.finish()
	})
}

type codeWriter struct {
	http.ResponseWriter
	accept string // the request's Accept header
	status int
	held   *bytes.Buffer // the body of a failed response, until finish
}

func (c *codeWriter) WriteHeader(status int) {
	c.status = status
	if status >= 400 {
		c.held = &bytes.Buffer{}
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *codeWriter) Write(b []byte) (int, error) {
	if c.held != nil {
		return c.held.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and so the websocket upgrade) reach the real writer.
func (c *codeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *codeWriter) finish() {
	if c.held == nil {
		return
	}
	var body struct {
		Errors []map[string]any `json:"errors"`
		Data   any              `json:"data,omitempty"`
	}
	if json.Unmarshal(c.held.Bytes(), &body) != nil || len(body.Errors) == 0 {
		msg := strings.TrimSpace(c.held.String())
		if msg == "" || len(msg) > 200 {
			msg = http.StatusText(c.status)
		}
		body.Errors = []map[string]any{{"message": msg}}
	}
	for _, e := range body.Errors {
		ext, _ := e["extensions"].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			e["extensions"] = ext
		}
		if _, ok := ext["code"]; !ok {
			ext["code"] = flashsale.EINVALID
		}
	}
	status := c.status
	if status == http.StatusNotAcceptable {
		// gqlgen's answer to a mutation over GET; GraphQL over HTTP asks for 405 and the
		// method that would do.
		status = http.StatusMethodNotAllowed
		c.ResponseWriter.Header().Set("Allow", http.MethodPost)
	}
	c.ResponseWriter.Header().Set("Content-Type", media.ResponseType(c.accept))
	c.ResponseWriter.Header().Del("Content-Length")
	c.ResponseWriter.WriteHeader(status)
	json.NewEncoder(c.ResponseWriter).Encode(body)
}

// OpsMux serves what every process serves for its operators: /healthz (alive), /readyz
// (this process can do its work; the status of each dependency) and /metrics (Prometheus).
// Workers serve only this.
func OpsMux(checks map[string]Check, gatherer prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", readiness(checks, true))
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

// withAuth puts the viewer of a valid bearer token in the context. A token that is invalid,
// expired or revoked does not stop the request: what anyone may read (the catalog, the sales)
// and the sign-in mutations are answered as to anyone, as a client whose token lapsed between
// two pages expects, and anything else is refused whole with the token's own UNAUTHENTICATED
// error and 401 (staleTokens), so that a client learns at once that it must sign in again.
func withAuth(auth flashsale.AuthService, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		v, err := auth.Authenticate(r.Context(), bearer(header))
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(flashsale.NewContextWithViewer(r.Context(), v)))
		case flashsale.ErrorCode(err) == flashsale.EUNAUTHENTICATED:
			st := &staleToken{err: err}
			next.ServeHTTP(&staleWriter{ResponseWriter: w, token: st}, r.WithContext(context.WithValue(r.Context(), staleTokenKey{}, st)))
		default: // the token could not be checked (a store is recovering)
			status := http.StatusUnauthorized
			if flashsale.ErrorCode(err) == flashsale.EUNAVAILABLE {
				status = http.StatusServiceUnavailable
			}
			writeGraphQLError(w, r, status, err)
		}
	})
}

// writeGraphQLError answers a request refused before GraphQL ran, in the media type the
// client asked for (GraphQL over HTTP: with application/graphql-response+json, a client
// reads the body of a 4xx as a GraphQL response). A refusal that says when to retry also
// carries Retry-After, as HTTP clients and proxies read it.
func writeGraphQLError(w http.ResponseWriter, r *http.Request, status int, err error) {
	ext := map[string]any{"code": flashsale.ErrorCode(err)}
	if s := flashsale.RetryAfterSeconds(err); s > 0 {
		ext["retryAfter"] = s
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	w.Header().Set("Content-Type", media.ResponseType(r.Header.Get("Accept")))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message":    flashsale.ErrorMessage(err),
		"extensions": ext,
	}}})
}

// publicHealth serves /healthz and a /readyz that names no error: what a load balancer on the
// public port needs, and nothing that describes the internals to a stranger.
func publicHealth(checks map[string]Check) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", readiness(checks, false))
	return mux
}

// readiness runs every check in parallel with a deadline and answers each one's status, with
// each failure's error when details is set; it answers 503 if any failed other than Degraded.
func readiness(checks map[string]Check, details bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		status := map[string]string{}
		code := http.StatusOK
		for name, check := range checks {
			wg.Go(func() {
				result := "ok"
				err := check(ctx)
				if err != nil {
					result = "unavailable"
					if IsDegraded(err) {
						result = "degraded"
					}
					if details {
						result = err.Error()
					}
				}
				mu.Lock()
				status[name] = result
				if fatal(err) {
					code = http.StatusServiceUnavailable
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(status)
	})
}

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
		ctx := flashsale.NewContextWithRequestID(r.Context(), id)
		next.ServeHTTP(rec, r.WithContext(ctx))
		// A websocket (101) lasts as long as its subscriptions: its duration says nothing.
		if d := time.Since(start); rec.status >= 500 || (d > time.Second && rec.status != http.StatusSwitchingProtocols) {
			log.WarnContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", d)
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

package graph

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale"
)

// Serving bounds what one client may hold of the server.
type Serving struct {
	// ReadTimeout bounds reading a request (headers and body) and WriteTimeout writing its
	// answer; a websocket is exempt once it asks to upgrade. Zero: no bound.
	ReadTimeout, WriteTimeout time.Duration
	// WebsocketsPerAddress caps the open websockets of one client address (zero: no cap).
	WebsocketsPerAddress int
	// CORSOrigins are the browser origins allowed to call /query ("*": any; empty: none).
	CORSOrigins []string
	// NoPlayground leaves GET / unserved.
	NoPlayground bool
	// OpsElsewhere keeps /metrics and the dependencies' errors off this handler: they are
	// served on a port of the operators' own (OpsMux).
	OpsElsewhere bool

	open *openSockets
}

// withDeadlines sets the connection's read and write deadlines for each request, and clears
// them for a websocket, which lives as long as its subscriptions (its pings find dead peers).
// Per request rather than on the server, because http.Server's timeouts would also cut
// websockets.
func (s Serving) withDeadlines(next http.Handler) http.Handler {
	if s.ReadTimeout == 0 && s.WriteTimeout == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Header.Get("Upgrade") != "" {
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
		} else {
			now := time.Now()
			if s.ReadTimeout > 0 {
				rc.SetReadDeadline(now.Add(s.ReadTimeout))
			}
			if s.WriteTimeout > 0 {
				rc.SetWriteDeadline(now.Add(s.WriteTimeout))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// capWebsockets refuses a websocket upgrade from an address that already holds
// WebsocketsPerAddress open ones, with 429 before the upgrade.
func (s *Serving) capWebsockets(next http.Handler) http.Handler {
	if s.WebsocketsPerAddress <= 0 {
		return next
	}
	s.open = &openSockets{byAddr: map[string]int{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		addr := s.clientAddr(r)
		if !s.open.take(addr, s.WebsocketsPerAddress) {
			writeGraphQLError(w, r, http.StatusTooManyRequests, flashsale.Retryable(flashsale.ERATELIMITED, 10*time.Second,
				"this address holds %d open websockets, the most allowed; close one first", s.WebsocketsPerAddress))
			return
		}
		defer s.open.release(addr)
		next.ServeHTTP(w, r) // the websocket transport returns when the connection closes
	})
}

// clientAddr is the request's client address (withClientAddress), or its peer's.
func (s *Serving) clientAddr(r *http.Request) string {
	if a, ok := flashsale.ClientAddrFromContext(r.Context()); ok {
		return a.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// openSockets counts the open websockets of each address.
type openSockets struct {
	mu     sync.Mutex
	byAddr map[string]int
}

func (o *openSockets) take(addr string, most int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byAddr[addr] >= most {
		return false
	}
	o.byAddr[addr]++
	return true
}

func (o *openSockets) release(addr string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byAddr[addr]--; o.byAddr[addr] <= 0 {
		delete(o.byAddr, addr)
	}
}

// cors answers browsers' preflights and marks the answers a listed origin may read. Tokens
// travel in the Authorization header, never in cookies, so credentials are not allowed.
func (s Serving) cors(next http.Handler) http.Handler {
	if len(s.CORSOrigins) == 0 {
		return next
	}
	return cors.New(cors.Options{
		AllowedOrigins: s.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Accept", "X-Request-Id",
			"Apollographql-Client-Name", "Apollographql-Client-Version"},
		ExposedHeaders: []string{"Retry-After", "X-Request-Id"},
		MaxAge:         600,
	}).Handler(next)
}

// subscriptionBudget is one websocket's count of open subscriptions, put in the connection's
// context when it initialises.
type subscriptionBudget struct {
	open atomic.Int32
	most int32
}

type subscriptionBudgetKey struct{}

// subscriptionCap is an operation interceptor: a subscription that would take a websocket
// over its budget is answered with an error, and each one gives its place back when it ends.
type subscriptionCap struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = subscriptionCap{}

func (subscriptionCap) ExtensionName() string                   { return "SubscriptionCap" }
func (subscriptionCap) Validate(graphql.ExecutableSchema) error { return nil }

func (subscriptionCap) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	b, _ := ctx.Value(subscriptionBudgetKey{}).(*subscriptionBudget)
	oc := graphql.GetOperationContext(ctx)
	if b == nil || oc.Operation == nil || oc.Operation.Operation != "subscription" {
		return next(ctx)
	}
	if b.open.Add(1) > b.most {
		b.open.Add(-1)
		err := flashsale.Retryable(flashsale.ERATELIMITED, 10*time.Second,
			"this websocket holds %d subscriptions, the most allowed; complete one first", b.most)
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, err)}})
	}
	context.AfterFunc(ctx, func() { b.open.Add(-1) }) // the transport cancels it when the subscription ends
	return next(ctx)
}

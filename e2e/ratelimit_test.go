package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/ratelimit"
)

// withLimits starts an API with budgets: those given, and no limit on the rest.
func withLimits(b ratelimit.Budgets) apitest.Option {
	return apitest.WithConfig(func(c *app.Config) { c.RateLimits = b })
}

// perHour is a budget of burst events that does not refill within a test.
func perHour(burst int) flashsale.Limit {
	return flashsale.Limit{Rate: 1, Period: time.Hour, Burst: burst}
}

// from POSTs a query as the client at addr, as a proxy on the loopback forwards it ("" for
// no X-Forwarded-For).
func from(t testing.TB, s *apitest.Server, addr, token, query string, vars map[string]any) *apitest.Response {
	t.Helper()
	body, err := json.Marshal(apitest.Request{Query: query, Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.HTTP(t, req)
}

// wantRateLimited fails unless r is refused RATE_LIMITED with a retryAfter: whole (429 with
// a matching Retry-After) or as the field at path.
func wantRateLimited(t testing.TB, r *apitest.Response, whole bool, path string) {
	t.Helper()
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != flashsale.ERATELIMITED {
		t.Fatalf("got %d %s; want one RATE_LIMITED error", r.Status, r.Body)
	}
	retry, _ := r.Errors[0].Extensions["retryAfter"].(float64)
	if retry < 1 {
		t.Errorf("extensions.retryAfter = %v, want whole seconds ≥ 1", r.Errors[0].Extensions["retryAfter"])
	}
	if whole {
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != strconv.Itoa(int(retry)) {
			t.Errorf("got status %d, Retry-After %q; want 429 and %v", r.Status, r.Header.Get("Retry-After"), retry)
		}
		return
	}
	if r.Status != http.StatusOK || fmt.Sprint(r.Errors[0].Path) != "["+path+"]" {
		t.Errorf("got status %d, path %v; want 200 and the field error at %s", r.Status, r.Errors[0].Path, path)
	}
}

// wantServed fails unless another client's { __typename } is answered.
func wantServed(t testing.TB, s *apitest.Server, addr, token string) {
	t.Helper()
	if r := from(t, s, addr, token, `{ __typename }`, nil); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("{ __typename } from another client: %d %s; want it answered", r.Status, r.Body)
	}
}

// Guessing one account's password is limited whatever address the guesses come from and
// whichever replica they reach: the account's budget is shared through Redis.
func TestRateLimitLoginsPerAccountAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := apitest.Start(t, withLimits(ratelimit.Budgets{Accounts: perHour(5)}))
	b := apitest.StartReplica(t, a)
	a.Register(t, "victim@example.test", "the-right-password", "Victim")
	// The registration spent one of the account's five.
	const login = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`
	var answered, limited int
	for i := range 12 {
		s := []*apitest.Server{a, b}[i%2]
		// The same account, however its email is written.
		email := []string{"victim@example.test", " Victim@Example.TEST "}[i%2]
		r := from(t, s, fmt.Sprintf("198.51.100.%d", i+1), "", login, map[string]any{"e": email, "p": "guess-" + strconv.Itoa(i)})
		switch r.Codes()[0] {
		case flashsale.EUNAUTHENTICATED:
			answered++
		case flashsale.ERATELIMITED:
			limited++
			wantRateLimited(t, r, false, "login")
		default:
			t.Fatalf("login %d: %s", i, r.Body)
		}
	}
	if answered != 4 || limited != 8 {
		t.Errorf("12 guesses over two replicas from 12 addresses: %d checked, %d refused; want 4 and 8", answered, limited)
	}
	// The right password is refused too while the budget is spent: a guesser cannot tell.
	r := from(t, b, "198.51.100.99", "", login, map[string]any{"e": "victim@example.test", "p": "the-right-password"})
	wantRateLimited(t, r, false, "login")
	// Another account is untouched, and so is everyone else.
	a.Register(t, "bystander@example.test", "bystander-password", "Bystander")
	b.Login(t, "bystander@example.test", "bystander-password")
	wantServed(t, a, "198.51.100.1", "")
}

// meQuery is a read that spends the shared requests budget ({ __typename }, answered from
// memory, spends the local one alone).
const meQuery = `{ me { id } }`

// 300 concurrent requests of one signed-in viewer, spread over two replicas, get exactly the
// shared budget through; the rest are refused whole, 429 with Retry-After.
func TestRateLimitViewerConcurrentAcrossReplicas(t *testing.T) {
	t.Parallel()
	const burst = 50
	a := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(burst)}))
	b := apitest.StartReplica(t, a)
	token := customer(t, a, "busy@example.test")
	var mu sync.Mutex
	var ok int
	var refused []*apitest.Response
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			r := from(t, []*apitest.Server{a, b}[i%2], "", token, meQuery, nil)
			mu.Lock()
			defer mu.Unlock()
			if r.Status == http.StatusOK && len(r.Errors) == 0 {
				ok++
			} else {
				refused = append(refused, r)
			}
		})
	}
	wg.Wait()
	if ok != burst || len(refused) != 300-burst {
		t.Fatalf("300 concurrent requests of one viewer: %d served, %d refused; want %d and %d", ok, len(refused), burst, 300-burst)
	}
	for _, r := range refused {
		wantRateLimited(t, r, true, "")
	}
	// Every refusal was counted, by one limiter or the other, on one replica or the other.
	total := 0
	for _, s := range []*apitest.Server{a, b} {
		for _, limiter := range []string{"local", "shared"} {
			total += metric(t, s, fmt.Sprintf(`flashsale_rate_limit_refusals_total{budget="requests",limiter=%q}`, limiter))
		}
	}
	if total != 300-burst {
		t.Errorf("refusals counted %v, want %d", total, 300-burst)
	}
	wantServed(t, a, "", customer(t, b, "calm@example.test"))
	wantServed(t, b, "", "")
}

// Stock-taking mutations have a budget of their own; a refusal is the field's error.
func TestRateLimitOrders(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, withLimits(ratelimit.Budgets{Orders: perHour(2), Requests: perHour(100)}))
	saleID, _ := activeSale(t, s, "Limited", 10, 10)
	buyer := customer(t, s, "eager@example.test")
	placeOrders(t, s, buyer, saleID, 2)
	r := s.Do(t, buyer, placeInSale, map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": "third"}})
	wantRateLimited(t, r, false, "placeFlashSaleOrder")
	if got := saleRemaining(t, s, saleID); got != 8 {
		t.Errorf("remaining %d after two orders and a refusal, want 8", got)
	}
	placeOrders(t, s, customer(t, s, "patient@example.test"), saleID, 1)
	// The admin, who ran the sale's setup above, is not limited.
	for range 5 {
		wantServed(t, s, "", s.AdminToken(t))
	}
}

// Anonymous requests are limited per client address: X-Forwarded-For names it when the peer
// is a trusted proxy (the loopback, by default), and is ignored otherwise.
func TestRateLimitAnonymousByAddress(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(3)}))
	for range 3 {
		wantServed(t, s, "198.51.100.1", "")
	}
	wantRateLimited(t, from(t, s, "198.51.100.1", "", `{ __typename }`, nil), true, "")
	// A proxy chain: the nearest untrusted hop is the client, whatever it says to its left.
	wantRateLimited(t, from(t, s, "6.6.6.6, 198.51.100.1", "", `{ __typename }`, nil), true, "")
	wantServed(t, s, "198.51.100.2", "")

	// The same loopback peer, not trusted: a spoofed X-Forwarded-For changes nothing.
	untrusted := apitest.StartReplica(t, s, apitest.WithConfig(func(c *app.Config) { c.TrustedProxies = []netip.Prefix{} }))
	for i := range 3 {
		wantServed(t, untrusted, fmt.Sprintf("203.0.113.%d", i+1), "")
	}
	wantRateLimited(t, from(t, untrusted, "203.0.113.99", "", `{ __typename }`, nil), true, "")
	wantServed(t, s, "198.51.100.3", "")
}

// Websocket connections are limited per address before the upgrade, subscriptions per
// viewer or address, and queries sent over a websocket spend the requests budget as if
// they had come over HTTP.
func TestRateLimitWebsocketsAndSubscriptions(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, withLimits(ratelimit.Budgets{Websockets: perHour(2), Subscriptions: perHour(2), Requests: perHour(3)}))
	saleID, _ := activeSale(t, s, "Watched", 10, 1)
	header := func(addr string) apitest.WSOption {
		return apitest.WithHeader(http.Header{"X-Forwarded-For": {addr}})
	}
	s.DialWS(t, "", header("198.51.100.1"))
	ws := s.DialWS(t, "", header("198.51.100.1"))
	_, err := apitest.DialWS(t.Context(), s.URL, "", header("198.51.100.1"))
	if err == nil || !strings.Contains(err.Error(), "status 429") {
		t.Errorf("a third websocket from one address: %v; want refused 429", err)
	}
	other := s.DialWS(t, "", header("198.51.100.2"))

	for i := range 2 {
		sub := ws.MustSubscribe(t, saleStock, map[string]any{"id": saleID})
		if m := next(t, sub); len(m.Errors) > 0 {
			t.Fatalf("subscription %d: %v", i, m.Errors)
		}
	}
	sub := ws.MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	if m := next(t, sub); len(m.Codes()) != 1 || m.Codes()[0] != flashsale.ERATELIMITED {
		t.Errorf("a third subscription from one address: %+v; want RATE_LIMITED", m)
	}
	// Another address subscribes.
	if m := next(t, other.MustSubscribe(t, saleStock, map[string]any{"id": saleID})); len(m.Errors) > 0 {
		t.Errorf("another address's subscription: %v", m.Errors)
	}
	for i := range 4 {
		m := next(t, other.MustSubscribe(t, `{ __typename }`, nil))
		switch codes := m.Codes(); {
		case i < 3 && len(codes) > 0:
			t.Errorf("query %d over a websocket: %v; want it answered", i, m.Errors)
		case i == 3 && (len(codes) != 1 || codes[0] != flashsale.ERATELIMITED):
			t.Errorf("a fourth query over a websocket from one address: %+v; want RATE_LIMITED", m)
		}
	}
	wantServed(t, s, "198.51.100.1", "")
}

// With Redis cut off from one replica, it limits on its own, with the same budget, and still
// serves everyone within it; it logs the switch once.
func TestRateLimitRedisDownFallsBackToLocal(t *testing.T) {
	t.Parallel()
	a := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(5)}))
	redisAddr := strings.TrimPrefix(strings.TrimSuffix(testenv.RedisURL(t), "/0"), "redis://")
	proxy, listen := testenv.Proxy(t, redisAddr)
	b := apitest.StartReplica(t, a, apitest.WithConfig(func(c *app.Config) { c.RedisURL = "redis://" + listen + "/0" }))
	buyer := customer(t, a, "steady@example.test")
	proxy.Stop()

	// Reads the limits would send to Redis; what they answer without it is no concern here,
	// only that they are not refused.
	for i := range 5 {
		for _, r := range []*apitest.Response{from(t, b, "", buyer, meQuery, nil), from(t, b, "198.51.100.1", "", meQuery, nil)} {
			if slices.Contains(r.Codes(), flashsale.ERATELIMITED) || r.Status == http.StatusTooManyRequests {
				t.Fatalf("read %d within the budget, Redis cut: %d %s", i, r.Status, r.Body)
			}
		}
	}
	wantRateLimited(t, from(t, b, "", buyer, meQuery, nil), true, "")
	wantRateLimited(t, from(t, b, "198.51.100.1", "", meQuery, nil), true, "")
	for i := range 20 {
		wantServed(t, b, fmt.Sprintf("198.51.100.%d", 10+i), "")
	}
	if n := len(matching(b.Logs(slog.LevelWarn), "cannot be reached")); n != 1 {
		t.Errorf("the switch to local limits was logged %d times, want once", n)
	}
	if up := metric(t, b, "flashsale_rate_limit_shared_up"); up != 0 {
		t.Errorf("flashsale_rate_limit_shared_up = %v while Redis is cut, want 0", up)
	}
	if n := metric(t, b, `flashsale_rate_limit_refusals_total{budget="requests",limiter="local"}`); n != 2 {
		t.Errorf("local refusals counted %v, want 2", n)
	}
}

func next(t *testing.T, sub *apitest.Subscription) apitest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("subscription: %v", err)
	}
	return m
}

func matching(lines []string, s string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// The default budgets let a flash sale through: the load generator's buyers, each at an
// address of its own as an ingress forwards them, several attempts each in a second, and
// its { __typename } floor, spread the same way, meet no RATE_LIMITED (a refused floor
// fails the run).
func TestRateLimitDefaultsLetASaleThrough(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t, withLimits(app.DefaultRateLimits()))
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		URL: s.URL, AdminEmail: apitest.AdminEmail, AdminPassword: apitest.AdminPassword,
		Buyers: 200, Attempts: 800, Concurrency: 64, Quantity: 50, PerUserLimit: 1,
		RegisterConcurrency: 8, PollConcurrency: 4, StartDelay: time.Millisecond,
		DrainTimeout: time.Minute, RequestTimeout: 10 * time.Second, Floor: true,
	}, nil)
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	if !res.OK() || res.Rejections[flashsale.ERATELIMITED] > 0 || res.Accepted != 50 {
		t.Errorf("a sale under the default limits: %d accepted, rejections %v, violations %q; want 50 accepted, no RATE_LIMITED",
			res.Accepted, res.Rejections, res.Violations)
	}
	// The sale's buyers and the floor were told apart by address, not refused as one.
	for _, limiter := range []string{"local", "shared"} {
		if n := metric(t, s, fmt.Sprintf(`flashsale_rate_limit_refusals_total{budget="requests",limiter=%q}`, limiter)); n != 0 {
			t.Errorf("%s refusals of requests: %d, want 0", limiter, n)
		}
	}
}

// An order spends the orders budget, not the requests budget, in Redis: a buyer's orders
// spread over replicas leave its reads their whole shared budget (each replica still counts
// every request against it in front).
func TestRateLimitOrdersSpendTheirOwnBudget(t *testing.T) {
	t.Parallel()
	a := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(2), Orders: perHour(100)}))
	b := apitest.StartReplica(t, a)
	c := apitest.StartReplica(t, a)
	saleID, _ := activeSale(t, a, "Popular", 10, 10)
	buyer := customer(t, a, "regular@example.test")
	placeOrders(t, a, buyer, saleID, 2)
	placeOrders(t, b, buyer, saleID, 2)
	wantRateLimited(t, from(t, a, "", buyer, meQuery, nil), true, "")
	for range 2 {
		if r := from(t, c, "", buyer, meQuery, nil); r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("a read after four orders: %d %s; want it within the shared budget", r.Status, r.Body)
		}
	}
	wantRateLimited(t, from(t, c, "", buyer, meQuery, nil), true, "")
}

// A query of introspection alone, answered from memory, spends the requests budget in this
// process only: each replica serves its own burst of it.
func TestRateLimitIntrospectionSpendsLocally(t *testing.T) {
	t.Parallel()
	a := apitest.Start(t, withLimits(ratelimit.Budgets{Requests: perHour(2)}))
	b := apitest.StartReplica(t, a)
	for _, s := range []*apitest.Server{a, b} {
		wantServed(t, s, "198.51.100.1", "")
		wantServed(t, s, "198.51.100.1", "")
		wantRateLimited(t, from(t, s, "198.51.100.1", "", `{ __typename }`, nil), true, "")
	}
	// A read spends the shared budget too: two on one replica leave none on the other.
	from(t, a, "198.51.100.2", "", `{ products(first: 1) { edges { cursor } } }`, nil)
	from(t, a, "198.51.100.2", "", `{ products(first: 1) { edges { cursor } } }`, nil)
	wantRateLimited(t, from(t, b, "198.51.100.2", "", `{ products(first: 1) { edges { cursor } } }`, nil), true, "")
}

package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeShop is a tiny in-memory stand-in for the shop's GraphQL API: enough of register,
// login, createProduct, createFlashSale, flashSale, placeFlashSaleOrder and me.orders for
// Run's flow, told apart by the field names in the query. Its knobs make it misbehave.
type fakeShop struct {
	oversell      bool          // ignore the sale's quantity
	neverPay      bool          // orders stay PENDING
	hideOrders    bool          // me.orders lists nothing
	flakyRegister bool          // the first register of each email succeeds but answers INTERNAL
	payAfter      time.Duration // how long an order stays PENDING

	mu        sync.Mutex
	users     map[string]string // token → email
	passwords map[string]string // email → password
	flaked    map[string]bool
	quantity  int
	remaining int
	limit     int
	startsAt  time.Time
	orders    []*fakeOrder
	byKey     map[string]*fakeOrder
	// from counts the X-Forwarded-For addresses each token sent from ("" for anonymous).
	from map[string]map[string]int
}

type fakeOrder struct {
	id      string
	token   string
	units   int
	created time.Time
}

const fakeSaleID = "sale-1"

func newFakeShop(t *testing.T, f *fakeShop) *httptest.Server {
	t.Helper()
	f.users = map[string]string{"admin-token": "admin@example.com"}
	f.passwords = map[string]string{"admin@example.com": "admin-password"}
	f.flaked = map[string]bool{}
	f.byKey = map[string]*fakeOrder{}
	f.from = map[string]map[string]int{}
	if f.payAfter == 0 {
		f.payAfter = 20 * time.Millisecond
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	// A query may come as a GET (urql's shape), its fields in the URL, as GraphQL reads it.
	var err error
	if r.Method == http.MethodGet {
		req.Query = r.URL.Query().Get("query")
		if v := r.URL.Query().Get("variables"); v != "" {
			err = json.Unmarshal([]byte(v), &req.Variables)
		}
	} else {
		err = json.NewDecoder(r.Body).Decode(&req)
	}
	if r.URL.Path != "/query" || err != nil || req.Query == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	if f.from[token] == nil {
		f.from[token] = map[string]int{}
	}
	f.from[token][r.Header.Get("X-Forwarded-For")]++
	f.mu.Unlock()
	data, code := f.answer(req.Query, req.Variables, token)
	w.Header().Set("Content-Type", "application/json")
	if code != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errors": []any{map[string]any{"message": strings.ToLower(code), "extensions": map[string]any{"code": code}}},
			"data":   nil,
		})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func (f *fakeShop) answer(query string, vars map[string]any, token string) (any, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	input, _ := vars["input"].(map[string]any)
	now := time.Now()
	switch {
	case strings.Contains(query, "__typename"):
		return map[string]any{"__typename": "Query"}, ""
	case strings.Contains(query, "login("):
		email, _ := vars["email"].(string)
		if pw, ok := f.passwords[email]; !ok || pw != vars["password"] {
			return nil, "UNAUTHENTICATED"
		}
		for tok, e := range f.users {
			if e == email {
				return map[string]any{"login": map[string]any{"accessToken": tok}}, ""
			}
		}
		return nil, "INTERNAL"
	case strings.Contains(query, "register("):
		email, _ := input["email"].(string)
		if _, ok := f.passwords[email]; ok {
			return nil, "CONFLICT"
		}
		f.passwords[email], _ = input["password"].(string)
		f.users["tok-"+email] = email
		if f.flakyRegister && !f.flaked[email] {
			f.flaked[email] = true
			return nil, "INTERNAL"
		}
		return map[string]any{"register": map[string]any{"accessToken": "tok-" + email}}, ""
	case strings.Contains(query, "createProduct("):
		if token != "admin-token" {
			return nil, "FORBIDDEN"
		}
		return map[string]any{"createProduct": map[string]any{"id": "product-1"}}, ""
	case strings.Contains(query, "createFlashSale("):
		if token != "admin-token" {
			return nil, "FORBIDDEN"
		}
		starts, err := time.Parse(time.RFC3339, fmt.Sprint(input["startsAt"]))
		if err != nil || input["productId"] != "product-1" {
			return nil, "BAD_USER_INPUT"
		}
		f.startsAt = starts
		f.quantity = int(input["quantity"].(float64))
		f.remaining = f.quantity
		f.limit = int(input["perUserLimit"].(float64))
		return map[string]any{"createFlashSale": map[string]any{"id": fakeSaleID, "startsAt": starts.Format(time.RFC3339)}}, ""
	case strings.Contains(query, "flashSale(id"):
		status := "ACTIVE"
		switch {
		case now.Before(f.startsAt):
			status = "SCHEDULED"
		case f.remaining <= 0:
			status = "SOLD_OUT"
		}
		return map[string]any{"flashSale": map[string]any{"remaining": max(f.remaining, 0), "quantity": f.quantity, "status": status}}, ""
	case strings.Contains(query, "placeFlashSaleOrder("):
		if _, ok := f.users[token]; !ok {
			return nil, "UNAUTHENTICATED"
		}
		if now.Before(f.startsAt) {
			return nil, "SALE_NOT_ACTIVE"
		}
		key := token + "/" + fmt.Sprint(input["idempotencyKey"])
		o, ok := f.byKey[key]
		if !ok {
			units := 0
			for _, o := range f.orders {
				if o.token == token {
					units += o.units
				}
			}
			switch {
			case units+1 > f.limit:
				return nil, "LIMIT_EXCEEDED"
			case f.remaining <= 0 && !f.oversell:
				return nil, "SOLD_OUT"
			}
			f.remaining--
			o = &fakeOrder{id: fmt.Sprintf("order-%d", len(f.orders)+1), token: token, units: 1, created: now}
			f.orders = append(f.orders, o)
			f.byKey[key] = o
		}
		return map[string]any{"placeFlashSaleOrder": map[string]any{"id": o.id, "quantity": o.units, "status": "PENDING"}}, ""
	case strings.Contains(query, "order(id:"):
		if token != "admin-token" {
			return nil, "FORBIDDEN"
		}
		byID := map[string]*fakeOrder{}
		for _, o := range f.orders {
			byID[o.id] = o
		}
		data := map[string]any{}
		for _, m := range orderLookup.FindAllStringSubmatch(query, -1) {
			o, ok := byID[m[2]]
			if !ok {
				data[m[1]] = nil
				continue
			}
			status, updated := f.status(o, now), o.created
			if status == "PAID" {
				updated = o.created.Add(f.payAfter)
			}
			data[m[1]] = map[string]any{"id": o.id, "status": status,
				"createdAt": o.created.Format(time.RFC3339Nano), "updatedAt": updated.Format(time.RFC3339Nano)}
		}
		return data, ""
	case strings.Contains(query, "me {"):
		if _, ok := f.users[token]; !ok {
			return map[string]any{"me": nil}, ""
		}
		edges := []any{}
		for _, o := range f.orders {
			if o.token != token || f.hideOrders {
				continue
			}
			edges = append(edges, map[string]any{"node": map[string]any{
				"id": o.id, "status": f.status(o, now), "quantity": o.units, "flashSale": map[string]any{"id": fakeSaleID},
			}})
		}
		return map[string]any{"me": map[string]any{"orders": map[string]any{
			"edges": edges, "pageInfo": map[string]any{"hasNextPage": false, "endCursor": nil},
		}}}, ""
	}
	return nil, "BAD_USER_INPUT"
}

// orderLookup matches one aliased `alias: order(id: "…")` of a query.
var orderLookup = regexp.MustCompile(`(\w+): order\(id: "([^"]*)"\)`)

// status is the order's status at now: PAID payAfter after it was placed, unless the shop
// never pays.
func (f *fakeShop) status(o *fakeOrder, now time.Time) string {
	if !f.neverPay && now.Sub(o.created) >= f.payAfter {
		return "PAID"
	}
	return "PENDING"
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// smallConfig is a run small enough for a test.
func smallConfig(url string) Config {
	return Config{
		URL: url, Buyers: 20, Attempts: 100, Concurrency: 8, Quantity: 10, PerUserLimit: 1,
		RegisterConcurrency: 4, PollConcurrency: 4, StartDelay: time.Millisecond,
		DrainTimeout: 3 * time.Second, RequestTimeout: 5 * time.Second,
	}
}

func TestRunAgainstFakeShop(t *testing.T) {
	t.Parallel()
	srv := newFakeShop(t, &fakeShop{})
	cfg := smallConfig(srv.URL)
	cfg.Floor = true
	var progress lockedBuffer
	res, err := Run(t.Context(), cfg, &progress)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.OK() || len(res.Warnings) != 0 {
		t.Errorf("violations %q, warnings %q; want none", res.Violations, res.Warnings)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"attempts", res.Attempts, 100},
		{"accepted", res.Accepted, 10},
		{"accepted units", res.AcceptedUnits, 10},
		{"rejections", res.Rejections["SOLD_OUT"] + res.Rejections["LIMIT_EXCEEDED"], 90},
		{"sold", res.Sold, 10},
		{"remaining", res.Remaining, 0},
		{"oversold", res.Oversold, 0},
		{"lost", res.Lost, 0},
		{"unacknowledged", res.Unacknowledged, 0},
		{"query errors", res.QueryErrors, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.name, c.got, c.want)
		}
	}
	// Every order turns PAID payAfter (20ms) after it was placed, so the shop's stamps say
	// 0.020 s, while the polls, which wait for the burst to end, see it later.
	if !res.Drained || res.DrainS != 0.02 || res.DrainObservedS < res.DrainS {
		t.Errorf("drained %v in %v s (observed %v s); want drained in 0.02 s by the shop's stamps, observed no sooner",
			res.Drained, res.DrainS, res.DrainObservedS)
	}
	if res.SaleStatus != "SOLD_OUT" || res.FlashSaleID != fakeSaleID {
		t.Errorf("sale %s status %q; want %s SOLD_OUT", res.FlashSaleID, res.SaleStatus, fakeSaleID)
	}
	if res.AttemptsPerS <= 0 || res.P50Ms <= 0 || res.P50Ms > res.P95Ms || res.P95Ms > res.P99Ms || res.FloorPerS <= 0 {
		t.Errorf("rate %v/s, p50/p95/p99 %v/%v/%v ms, floor %v/s; want positive, ordered figures", res.AttemptsPerS, res.P50Ms, res.P95Ms, res.P99Ms, res.FloorPerS)
	}
	if res.FloorBeforePerS <= 0 || res.FloorAfterPerS <= 0 || res.FloorPerS != (res.FloorBeforePerS+res.FloorAfterPerS)/2 {
		t.Errorf("floor %v/s from %v/s before the burst and %v/s after; want both measured and the floor their mean",
			res.FloorPerS, res.FloorBeforePerS, res.FloorAfterPerS)
	}
	for _, want := range []string{"register: 20/20 buyers", "burst: 100/100 attempts, 10 accepted", "drain: 10/10 accepted orders PAID"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	t.Logf("table:\n%s", table.String())
	for _, want := range []string{"attempts/s", "rejected SOLD_OUT", "oversold", "drain"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("unmarshal result: %v", err)
	}
	for _, key := range []string{"attempts", "attempts_per_s", "accepted", "rejections", "p50_ms", "p95_ms", "p99_ms", "quantity", "sold", "oversold", "lost", "drain_s"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("JSON result lacks %q: %s", key, raw)
		}
	}
}

func TestRunFindsBrokenShops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		shop         *fakeShop
		wantOversold int
		wantLost     int
		wantMissing  int
		wantDrained  bool
	}{
		{name: "oversells", shop: &fakeShop{oversell: true}, wantOversold: 10, wantDrained: true},
		{name: "never pays", shop: &fakeShop{neverPay: true}, wantLost: 10},
		{name: "loses orders", shop: &fakeShop{hideOrders: true}, wantLost: 10, wantMissing: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeShop(t, tt.shop)
			cfg := smallConfig(srv.URL)
			cfg.DrainTimeout = 300 * time.Millisecond
			res, err := Run(t.Context(), cfg, io.Discard)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Oversold != tt.wantOversold || res.Lost != tt.wantLost || res.Missing != tt.wantMissing || res.Drained != tt.wantDrained {
				t.Errorf("oversold %d, lost %d, missing %d, drained %v; want %d, %d, %d, %v",
					res.Oversold, res.Lost, res.Missing, res.Drained, tt.wantOversold, tt.wantLost, tt.wantMissing, tt.wantDrained)
			}
			if res.OK() {
				t.Errorf("OK() = true; want violations")
			}
		})
	}
}

func TestRunRegisterRetryLogsIn(t *testing.T) {
	t.Parallel()
	srv := newFakeShop(t, &fakeShop{flakyRegister: true})
	cfg := smallConfig(srv.URL)
	cfg.Buyers, cfg.Attempts = 5, 20
	res, err := Run(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.OK() || res.Accepted != 5 {
		t.Errorf("accepted %d, violations %q; want 5 and none", res.Accepted, res.Violations)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"remote host", Config{URL: "http://example.com:8080"}},
		{"private address", Config{URL: "http://10.1.2.3:8080"}},
		{"limit above quantity", Config{URL: "http://localhost:1", Quantity: 5, PerUserLimit: 6}},
		{"negative buyers", Config{URL: "http://localhost:1", Buyers: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if res, err := Run(t.Context(), tt.cfg, nil); err == nil {
				t.Errorf("Run(%+v) = %+v, nil; want an error", tt.cfg, res)
			}
		})
	}
}

func TestRunBadAdminPassword(t *testing.T) {
	t.Parallel()
	srv := newFakeShop(t, &fakeShop{})
	cfg := smallConfig(srv.URL)
	cfg.AdminPassword = "wrong"
	_, err := Run(t.Context(), cfg, nil)
	if got := ErrorCode(err); got != "UNAUTHENTICATED" {
		t.Errorf("Run with a wrong admin password: %v (code %q); want UNAUTHENTICATED", err, got)
	}
}

func TestFloor(t *testing.T) {
	t.Parallel()
	srv := newFakeShop(t, &fakeShop{})
	perSec, p50, p99, err := Floor(t.Context(), srv.URL, 4, 200)
	if err != nil {
		t.Fatalf("Floor: %v", err)
	}
	if perSec <= 0 || p50 <= 0 || p50 > p99 {
		t.Errorf("Floor = %v/s, p50 %v ms, p99 %v ms; want positive, p50 ≤ p99", perSec, p50, p99)
	}

	broken, _ := cannedServer(t, http.StatusServiceUnavailable, "down")
	if _, _, _, err := Floor(t.Context(), broken.URL, 4, 20); err == nil {
		t.Errorf("Floor against a server answering 503: no error; want one")
	}
	if _, _, _, err := Floor(t.Context(), "http://example.com", 4, 20); err == nil {
		t.Errorf("Floor against a remote host: no error; want one")
	}
}

// Every buyer sends from one address of its own, and every anonymous request (the floor's)
// from another, as an ingress would forward a crowd: the shop's per-address limits see
// thousands of clients, not the load generator's one.
func TestRunSendsClientAddresses(t *testing.T) {
	t.Parallel()
	f := &fakeShop{}
	srv := newFakeShop(t, f)
	cfg := smallConfig(srv.URL)
	cfg.Floor = true
	if _, err := Run(t.Context(), cfg, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	buyerAddrs := map[string]bool{}
	for token, addrs := range f.from {
		if token == "" || token == "admin-token" {
			continue
		}
		if len(addrs) != 1 {
			t.Errorf("buyer %s sent from %d addresses, want 1: %v", token, len(addrs), addrs)
		}
		for a := range addrs {
			if buyerAddrs[a] {
				t.Errorf("two buyers sent from %s", a)
			}
			buyerAddrs[a] = true
			if ip, err := netip.ParseAddr(a); err != nil || !netip.MustParsePrefix("10.0.0.0/8").Contains(ip) {
				t.Errorf("buyer address %q, want one of 10.0.0.0/8", a)
			}
		}
	}
	if len(buyerAddrs) != cfg.Buyers {
		t.Errorf("%d buyer addresses, want %d", len(buyerAddrs), cfg.Buyers)
	}
	// Anonymous requests: registrations (from their buyer's address) and the crowd's, each
	// from an address no other request used while fewer than the crowd's size.
	for a, n := range f.from[""] {
		if n > 1 && !buyerAddrs[a] {
			t.Errorf("%d anonymous requests from %s, want each from its own", n, a)
		}
	}
	if n := len(f.from[""]); n < 2*cfg.Attempts {
		t.Errorf("anonymous requests came from %d addresses, want at least the floor's %d", n, 2*cfg.Attempts)
	}
}

func TestAddress(t *testing.T) {
	t.Parallel()
	for i, want := range map[int]string{0: "10.0.0.1", 255: "10.0.1.0", 4999: "10.0.19.136"} {
		if got := Address(i); got != want {
			t.Errorf("Address(%d) = %s, want %s", i, got, want)
		}
	}
	if a, b := crowdAddress(1), Address(1); a == b || !strings.HasPrefix(a, "10.") {
		t.Errorf("crowdAddress(1) = %s beside Address(1) = %s, want another address of 10/8", a, b)
	}
}

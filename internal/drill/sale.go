package drill

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// Sale is the flash sale a drill runs.
type Sale struct {
	Quantity     int // units for sale
	Buyers       int
	Tries        int // orders each buyer tries to place, one unit each
	PerUserLimit int
	Concurrency  int // requests in flight
}

// DefaultSale has demand exceed stock five times over, as a flash sale's does.
var DefaultSale = Sale{Quantity: 150, Buyers: 400, Tries: 2, PerUserLimit: 2, Concurrency: 32}

// Fault is what a drill does to the stack in the middle of a sale.
type Fault struct {
	// Name identifies the drill in its report line.
	Name string
	// Inject runs once a third of the units are sold, beside the buyers, who keep buying. It
	// returns once the fault is over and the dependency is back; an error fails the drill.
	Inject func(ctx context.Context, r *Run) error
}

// Run is a sale in progress, as a fault sees it.
type Run struct {
	Stack  *Stack
	Sale   Sale
	SaleID flashsale.SaleID

	t       *testing.T
	saleGID string // the sale's public id
	client  *buyerClient
	buyers  []*buyer
	sold    atomic.Int64
	done    chan struct{} // closed when the buyers of the burst have finished

	mu       sync.Mutex
	accepted []accepted
	answers  map[string]int // the burst's answers by code ("" for an order)
	gaveUp   int
	moppedUp int
	samples  map[string]string // a message per unexpected code
}

type buyer struct {
	token string
	addr  string
	held  atomic.Int64 // units of accepted orders
}

type accepted struct {
	order flashsale.OrderID
	at    time.Time
	mopUp bool
}

// Sold returns the units accepted so far.
func (r *Run) Sold() int { return int(r.sold.Load()) }

// WaitSold waits until n units are sold, and reports false if the buyers finished or ctx
// ended first.
func (r *Run) WaitSold(ctx context.Context, n int) bool {
	for r.Sold() < n {
		select {
		case <-r.done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// Logf logs to the drill's test.
func (r *Run) Logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf(format, args...)
}

// Pool is the sale's stock pool.
func (r *Run) Pool() flashsale.PoolKey { return flashsale.SalePool(r.SaleID) }

// attemptPatience is how long a buyer keeps retrying one order before giving up: a liveness
// bound, far above any recovery the contract expects.
const attemptPatience = 45 * time.Second

const placeMutation = `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`

// attempt places one order as buyer b with the idempotency key, retrying what the contract
// says will pass later (UNAVAILABLE, RATE_LIMITED after their retryAfter) and what got no
// answer at all, with the same key. It returns the last code ("" for an order).
func (r *Run) attempt(ctx context.Context, b *buyer, key string, mopUp bool) string {
	deadline := time.Now().Add(attemptPatience)
	vars := map[string]any{"in": map[string]any{"flashSaleId": r.saleGID, "quantity": 1, "idempotencyKey": key}}
	for {
		a := r.client.do(ctx, b.token, b.addr, placeMutation, vars)
		r.count(a, mopUp)
		var wait time.Duration
		switch a.code {
		case "":
			id, err := placedOrder(a)
			if err != nil {
				r.t.Errorf("drill: an accepted order's answer: %v", err)
				return CodeBadAnswer
			}
			b.held.Add(1)
			r.sold.Add(1)
			r.mu.Lock()
			r.accepted = append(r.accepted, accepted{order: id, at: time.Now(), mopUp: mopUp})
			r.mu.Unlock()
			return ""
		case flashsale.EUNAVAILABLE, flashsale.ERATELIMITED:
			wait = max(a.retryAfter, 50*time.Millisecond)
		case CodeTransport, "HTTP_502", "HTTP_503", "HTTP_504":
			wait = 100 * time.Millisecond
		default:
			return a.code
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			r.mu.Lock()
			r.gaveUp++
			r.mu.Unlock()
			return a.code
		}
		sleep(ctx, wait)
	}
}

// placedOrder reads the order's id from a placeFlashSaleOrder answer.
func placedOrder(a answer) (flashsale.OrderID, error) {
	var out struct{ PlaceFlashSaleOrder struct{ ID string } }
	if err := a.decode(&out); err != nil {
		return 0, err
	}
	return flashsale.ParseOrderID(out.PlaceFlashSaleOrder.ID)
}

func (r *Run) count(a answer, mopUp bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mopUp {
		return
	}
	r.answers[a.code]++
	if !expected[a.code] && r.samples[a.code] == "" {
		r.samples[a.code] = a.message
	}
}

// expected are the answers a sale may give during a fault: an order, the refusals of a sale
// selling out, and the retryable ones. CONFLICT answers a retried key whose first request
// died with its process before writing the order: it is the contract's answer until
// reconciliation returns the hold.
var expected = map[string]bool{
	"": true, flashsale.ESOLDOUT: true, flashsale.ELIMITEXCEEDED: true, flashsale.EUNAVAILABLE: true,
	flashsale.ERATELIMITED: true, flashsale.ECONFLICT: true, CodeTransport: true,
}

// setUp creates the sale and registers the buyers through the API.
func (r *Run) setUp(ctx context.Context) {
	t := r.t
	api := r.Stack.API()
	admin := api.AdminToken(t)
	var p struct{ CreateProduct struct{ ID string } }
	api.Do(t, admin, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`, map[string]any{
		"in": map[string]any{"name": "Drill", "description": "a drill's product", "priceCents": 2000, "stock": 10},
	}).MustData(t, &p)
	now := time.Now()
	var s struct{ CreateFlashSale struct{ ID string } }
	api.Do(t, admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
		"in": map[string]any{
			"productId": p.CreateProduct.ID, "salePriceCents": 1500, "quantity": r.Sale.Quantity,
			"perUserLimit": r.Sale.PerUserLimit,
			"startsAt":     now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
		},
	}).MustData(t, &s)
	r.saleGID = s.CreateFlashSale.ID
	id, err := flashsale.ParseSaleID(r.saleGID)
	if err != nil {
		t.Fatalf("drill: sale id %q: %v", r.saleGID, err)
	}
	r.SaleID = id

	// Buyers are written straight to PostgreSQL and given access tokens signed with the API's
	// secret, as the auth service signs them: registering 400 through the API hashes 400
	// passwords and takes longer than the sale, and sign-up is not what is drilled.
	prefix := testenv.Name()
	users := postgres.NewUserStore(r.Stack.Workers.DB)
	secret := []byte(api.Config.JWTSecret)
	r.buyers = make([]*buyer, r.Sale.Buyers)
	var wg sync.WaitGroup
	jobs := make(chan int)
	var failed atomic.Pointer[error]
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				u := &flashsale.User{Email: fmt.Sprintf("%s-%d@example.test", prefix, i), Name: "Buyer",
					Role: flashsale.RoleCustomer, PasswordHash: "-"} // matches no password: nobody signs in
				err := users.CreateUser(ctx, u)
				var token string
				if err == nil {
					now := time.Now()
					token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
						"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": u.ID.String(),
						"role": string(u.Role), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
					}).SignedString(secret)
				}
				if err != nil {
					err = fmt.Errorf("create buyer %d: %w", i, err)
					failed.Store(&err)
					continue
				}
				r.buyers[i] = &buyer{token: token, addr: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
			}
		})
	}
	for i := range r.buyers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("drill: %v", *err)
	}
}

// burst sends every buyer's tries, Concurrency at a time: first try of every buyer, then
// the second, and so on, as a crowd arriving at a sale's start and coming back.
func (r *Run) burst(ctx context.Context) {
	type job struct{ buyer, try int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range r.Sale.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				r.attempt(ctx, r.buyers[j.buyer], fmt.Sprintf("try-%d", j.try), false)
			}
		})
	}
	for try := range r.Sale.Tries {
		for i := range r.buyers {
			jobs <- job{i, try}
		}
	}
	close(jobs)
	wg.Wait()
}

// mopUp sells what reconciliation gave back after the burst (units a crash left held
// without an order), to buyers who may still buy, until Redis says none remain.
func (r *Run) mopUp(ctx context.Context, remaining func() (int, error)) error {
	deadline := time.Now().Add(attemptPatience)
	next := 0
	for n := 0; ; n++ {
		left, err := remaining()
		if err == nil && left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v of buying what reconciliation returned: %d units remain (err %v)", attemptPatience, left, err)
		}
		var b *buyer
		for range r.buyers {
			c := r.buyers[next%len(r.buyers)]
			next++
			if int(c.held.Load()) < r.Sale.PerUserLimit {
				b = c
				break
			}
		}
		if b == nil {
			return fmt.Errorf("%d units remain and every buyer holds the limit", left)
		}
		switch r.attempt(ctx, b, fmt.Sprintf("mop-up-%d", n), true) {
		case "":
			r.mu.Lock()
			r.moppedUp++
			r.mu.Unlock()
		case flashsale.ESOLDOUT:
			// This process's memory of the sell-out outlives a release for a moment.
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

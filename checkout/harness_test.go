package checkout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/perf/soldout"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/redis"
)

// harness is a checkout service on fresh shards and a Redis key prefix of its own.
type harness struct {
	t        testing.TB
	svc      *checkout.Service
	db       *postgres.DB
	redis    goredis.UniversalClient
	prefix   string // of the harness's Redis keys
	inv      *redis.Inventory
	ledger   *postgres.Ledger
	orders   *postgres.OrderStore
	products *postgres.ProductStore
	users    *postgres.UserStore
	clock    *clock

	stepsMu sync.Mutex
	steps   map[string][]time.Duration // what the service told ObserveStep
	repairs map[string]int             // what the service told CountRepair
}

func (h *harness) countRepair(kind string) {
	h.stepsMu.Lock()
	defer h.stepsMu.Unlock()
	h.repairs[kind]++
}

// repaired returns how many repairs of kind the service counted so far.
func (h *harness) repaired(kind string) int {
	h.stepsMu.Lock()
	defer h.stepsMu.Unlock()
	return h.repairs[kind]
}

func (h *harness) observeStep(step string, d time.Duration) {
	h.stepsMu.Lock()
	defer h.stepsMu.Unlock()
	h.steps[step] = append(h.steps[step], d)
}

// observed returns what the service observed of step so far.
func (h *harness) observed(step string) []time.Duration {
	h.stepsMu.Lock()
	defer h.stepsMu.Unlock()
	return slices.Clone(h.steps[step])
}

// testConfig keeps the grace short so tests of orphans run in seconds; the ordering the
// invariants rely on (grace > write timeout) holds.
var testConfig = checkout.Config{
	ReservationTTL: time.Minute,
	WriteTimeout:   2 * time.Second,
	OrphanGrace:    5 * time.Second,
}

type clock struct{ offset time.Duration }

func (c *clock) now() time.Time { return time.Now().Add(c.offset) }

// newHarness uses the shared Redis under a prefix of the test's own, or the given client
// (a private redis-server, for tests that flush it).
func newHarness(t testing.TB, client goredis.UniversalClient, prefix string) *harness {
	t.Helper()
	if client == nil {
		client, prefix = testenv.RedisClient(t)
	}
	db, _ := testenv.DB(t, 4, postgres.Options{})
	h := &harness{
		t: t, db: db, redis: client, prefix: prefix, inv: redis.NewInventory(client, prefix), ledger: postgres.NewLedger(db),
		orders: postgres.NewOrderStore(db), products: postgres.NewProductStore(db), users: postgres.NewUserStore(db),
		clock: &clock{}, steps: map[string][]time.Duration{}, repairs: map[string]int{},
	}
	bus := redis.NewStockBus(client, prefix, redis.StockBusOptions{})
	t.Cleanup(bus.Close)
	attempts := redis.NewAttemptTally(client, prefix, time.Hour, nil) // flushed when stats are read
	t.Cleanup(attempts.Close)
	h.svc = checkout.New(checkout.Deps{
		Sales: postgres.NewSaleStore(db), Products: h.products, Orders: h.orders, Inventory: h.inv, Ledger: h.ledger,
		Stock: bus, SoldOut: soldout.NewMemory(time.Second), Attempts: attempts, Stats: postgres.NewStatsStore(db),
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		ObserveStep: h.observeStep,
		CountRepair: h.countRepair,
	}, testConfig)
	h.svc.SetClock(h.clock.now)
	return h
}

// buyers inserts n customers (with a dummy password hash: nobody logs in here).
func (h *harness) buyers(n int) []flashsale.Viewer {
	h.t.Helper()
	vs := make([]flashsale.Viewer, n)
	prefix := testenv.Name()
	for i := range vs {
		u := &flashsale.User{Email: fmt.Sprintf("%s-%d@example.test", prefix, i), Name: "Buyer", Role: flashsale.RoleCustomer, PasswordHash: "x"}
		if err := h.users.CreateUser(context.Background(), u); err != nil {
			h.t.Fatalf("create buyer: %v", err)
		}
		vs[i] = flashsale.Viewer{UserID: u.ID, Role: u.Role}
	}
	return vs
}

// sale creates a product and a sale of it that is active now.
func (h *harness) sale(quantity, perUserLimit int) *flashsale.FlashSale {
	h.t.Helper()
	now := h.clock.now()
	return h.saleAt(quantity, perUserLimit, now.Add(-time.Minute), now.Add(time.Hour))
}

func (h *harness) saleAt(quantity, perUserLimit int, starts, ends time.Time) *flashsale.FlashSale {
	h.t.Helper()
	ctx := context.Background()
	p := &flashsale.Product{Name: "Gadget", PriceCents: 2000, Stock: 10}
	if err := h.products.CreateProduct(ctx, p); err != nil {
		h.t.Fatalf("create product: %v", err)
	}
	s := &flashsale.FlashSale{ProductID: p.ID, SalePriceCents: 999, Quantity: quantity, PerUserLimit: perUserLimit, StartsAt: starts, EndsAt: ends}
	if err := h.svc.CreateSale(ctx, s); err != nil {
		h.t.Fatalf("create sale: %v", err)
	}
	return s
}

// held returns the units that PENDING and PAID orders of the pool hold, from PostgreSQL.
func (h *harness) held(pool flashsale.PoolKey) (units, orders int) {
	h.t.Helper()
	holds, err := h.orders.HoldingOrders(context.Background(), pool)
	if err != nil {
		h.t.Fatalf("read holding orders: %v", err)
	}
	for _, hd := range holds {
		units += hd.Quantity
	}
	return units, len(holds)
}

// assertConserved checks the invariants of a sale: remaining + held = quantity in Redis and
// in PostgreSQL alike, and nothing oversold.
func (h *harness) assertConserved(s *flashsale.FlashSale) {
	h.t.Helper()
	pool := flashsale.SalePool(s.ID)
	remaining, err := h.inv.Remaining(context.Background(), pool)
	if err != nil {
		h.t.Fatalf("remaining: %v", err)
	}
	units, _ := h.held(pool)
	if units > s.Quantity {
		h.t.Errorf("oversold: orders hold %d units of a sale of %d", units, s.Quantity)
	}
	if got, want := remaining+units, s.Quantity; got != want {
		h.t.Errorf("stock not conserved: remaining %d + held %d = %d, want %d", remaining, units, got, want)
	}
}

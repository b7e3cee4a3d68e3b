// Package checkout sells: it creates flash sales, places orders by taking units from a stock
// pool in Redis and then writing the order (with its outbox event) to the buyer's shard,
// cancels and expires orders, and reconciles the pools with PostgreSQL.
//
// The order of the writes keeps the invariants. Units are taken first, in one atomic script,
// so two buyers never get the same unit. The reservation is recorded in the ledger while the
// order is inserted, and the order commits only once the record has: the ledger refuses a
// reservation of an older generation or under a number already granted, which is how a pool
// that Redis lost or gave back stale is caught before it sells and rebuilt from PostgreSQL.
// Reconciliation returns the units of holds without orders and sets drift right.
// docs/design.md walks through each case, and the one double fault not covered.
package checkout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale"
)

// SoldOutMemory remembers, in this process, pools that answered SOLD_OUT, so that the burst
// of orders after a sell-out is refused without a Redis round trip each (perf/soldout). It
// forgets a pool when stock comes back (a cancel or an expiry announced over pub/sub).
type SoldOutMemory interface {
	IsSoldOut(pool flashsale.PoolKey) bool
	Mark(pool flashsale.PoolKey)
	Clear(pool flashsale.PoolKey)
	// Any reports, cheaply, whether some pool may be marked: false means IsSoldOut is false
	// for every pool.
	Any() bool
}

// noMemory is the SoldOutMemory of a service given none: every attempt asks the pool.
type noMemory struct{}

func (noMemory) IsSoldOut(flashsale.PoolKey) bool { return false }
func (noMemory) Mark(flashsale.PoolKey)           {}
func (noMemory) Clear(flashsale.PoolKey)          {}
func (noMemory) Any() bool                        { return false }

// AttemptCounter counts the order attempts refused from memory, which never reach the pool's
// own count of attempts, and adds them to it in batches (redis.AttemptTally).
type AttemptCounter interface {
	// Add counts one attempt at pool, cheaply: it is on the stampede's path.
	Add(pool flashsale.PoolKey)
	// Flush adds what was counted to the pool's count now.
	Flush(ctx context.Context) error
}

// Config tunes the service; zero values take the defaults.
type Config struct {
	// ReservationTTL is how long a PENDING order holds its units before it expires.
	ReservationTTL time.Duration
	// WriteTimeout bounds each half of a placement from the moment units may be taken: the
	// reservation with its record in the ledger, then the order insert. Default 2s.
	WriteTimeout time.Duration
	// RebuildWait is how long a buyer whose pool is being rebuilt waits for it before being
	// answered UNAVAILABLE. It must leave room in WriteTimeout for the order that follows.
	// Default WriteTimeout / 2.
	RebuildWait time.Duration
	// RebuildTimeout bounds one rebuild of a pool, which runs on past the buyers waiting for
	// it. Default 10s.
	RebuildTimeout time.Duration
	// OrphanGrace is how old a hold with no order must be before reconciliation returns its
	// units; it is also how far back a rebuild reads the ledger for orders still being
	// written. Default 30s, far above WriteTimeout.
	OrphanGrace time.Duration
	// SettleGrace is how long a cancelled or expired order may stay unsettled (not yet
	// refunded, or found never charged, by the payment worker) before RequestSettlements
	// asks again. Default 10m, far above the payment queue's retries (about a minute).
	SettleGrace time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReservationTTL == 0 {
		c.ReservationTTL = 15 * time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 2 * time.Second
	}
	if c.RebuildWait == 0 {
		c.RebuildWait = c.WriteTimeout / 2
	}
	if c.RebuildTimeout == 0 {
		c.RebuildTimeout = 10 * time.Second
	}
	if c.OrphanGrace == 0 {
		c.OrphanGrace = 30 * time.Second
	}
	if c.SettleGrace == 0 {
		c.SettleGrace = 10 * time.Minute
	}
	return c
}

// Service places, cancels and expires orders and keeps the pools honest.
type Service struct {
	sales     flashsale.SaleStore
	products  flashsale.ProductStore
	orders    flashsale.OrderStore
	inventory flashsale.Inventory
	ledger    flashsale.ReservationLedger
	stock     flashsale.StockEvents
	soldOut   SoldOutMemory
	attempts  AttemptCounter
	stats     flashsale.StatsReader
	updates   flashsale.OrderUpdates
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	observe   func(step string, d time.Duration)
	repaired  func(kind string)

	loads singleflight.Group // one rebuild per pool per process at a time
	// sales caches flash sales by id, each for up to saleCacheTTL: the hot path must not
	// read the sale's store on every attempt, and staff may change a scheduled sale's terms
	// (SaleChangeLead keeps that change away from its start by more than the TTL).
	salesMu sync.RWMutex
	saleMap map[flashsale.SaleID]cachedSale
}

// Deps are the service's collaborators.
type Deps struct {
	Sales     flashsale.SaleStore
	Products  flashsale.ProductStore
	Orders    flashsale.OrderStore
	Inventory flashsale.Inventory
	Ledger    flashsale.ReservationLedger
	Stock     flashsale.StockEvents
	SoldOut   SoldOutMemory          // optional: without it every attempt asks the pool
	Attempts  AttemptCounter         // optional: attempts refused from memory go uncounted without it
	Stats     flashsale.StatsReader  // optional
	Updates   flashsale.OrderUpdates // optional: live order status for subscriptions
	Log       *slog.Logger
	// ObserveStep, if set, is told how long each step of every placed order took: StepReserve
	// (the units taken in Redis, with any rebuild it waited for), StepRecord (the reservation
	// in the ledger) and StepWrite (the order and its event in PostgreSQL).
	ObserveStep func(step string, d time.Duration)
	// CountRepair, if set, is told of every repair of a pool, by kind (the Repair* constants):
	// operators alert on them.
	CountRepair func(kind string)
}

// The kinds of repair CountRepair is told of.
const (
	RepairLostPool     = "lost_pool"     // Redis had no pool (flush, restart, eviction): rebuilt
	RepairStalePool    = "stale_pool"    // Redis had an older copy of the pool: rebuilt
	RepairOrphanHold   = "orphan_hold"   // a hold whose order was never written: released
	RepairFinishedHold = "finished_hold" // a hold of a cancelled or expired order: released
	RepairQuantity     = "quantity"      // the pool's quantity differed from PostgreSQL's
	RepairStock        = "stock"         // the stock was not quantity − Σ holds
	RepairBuyers       = "buyers"        // a buyer's count was not the sum of their holds
)

// RepairKinds lists every kind, so that a counter can show each at zero from the start.
var RepairKinds = []string{RepairLostPool, RepairStalePool, RepairOrphanHold, RepairFinishedHold,
	RepairQuantity, RepairStock, RepairBuyers}

// The steps of a placed order, as ObserveStep names them.
const (
	StepReserve = "reserve"
	StepRecord  = "record"
	StepWrite   = "write"
)

// New returns a service.
func New(d Deps, cfg Config) *Service {
	var soldOut SoldOutMemory = noMemory{}
	if d.SoldOut != nil {
		soldOut = d.SoldOut
	}
	return &Service{
		sales: d.Sales, products: d.Products, orders: d.Orders, inventory: d.Inventory, ledger: d.Ledger,
		stock: d.Stock, soldOut: soldOut, attempts: d.Attempts, stats: d.Stats, updates: d.Updates, log: d.Log, cfg: cfg.withDefaults(), now: time.Now,
		observe: d.ObserveStep, repaired: d.CountRepair, saleMap: map[flashsale.SaleID]cachedSale{},
	}
}

// countRepair tells CountRepair of n repairs of a kind.
func (s *Service) countRepair(kind string, n int) {
	if s.repaired == nil {
		return
	}
	for range n {
		s.repaired(kind)
	}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Config returns the service's settings with defaults applied.
func (s *Service) Config() Config { return s.cfg }

// publish announces a pool's new remaining count; a failure only delays live displays.
func (s *Service) publish(ctx context.Context, pool flashsale.PoolKey, remaining int) {
	if s.stock == nil {
		return
	}
	if err := s.stock.PublishStock(ctx, pool, remaining); err != nil {
		s.log.WarnContext(ctx, "publish stock update", "pool", string(pool), "err", err)
	}
}

// announce tells subscribed buyers about an order's new state; a failure only delays a
// live display.
func (s *Service) announce(ctx context.Context, o *flashsale.Order) {
	if s.updates == nil {
		return
	}
	if err := s.updates.PublishOrder(ctx, o); err != nil {
		s.log.WarnContext(ctx, "publish order update", "order", o.ID.String(), "err", err)
	}
}

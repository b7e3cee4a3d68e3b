// Package checkout sells: it creates flash sales, places orders by taking units from a stock
// pool in Redis and then writing the order (with its outbox event) to the buyer's shard,
// cancels and expires orders, and reconciles the pools with PostgreSQL.
//
// The order of the writes is what keeps the invariants. Units are taken first, in one atomic
// script, so two buyers can never get the same unit. The reservation is then recorded in the
// ledger while the order row is inserted, and the row commits only once the record has (see
// flashsale.OrderStore's CreateOrderWhen); if it cannot be written, the units go back, but
// only once we know the row does not exist. A process that dies in between leaves a hold
// with no order, which reconciliation returns after a grace period.
//
// Redis may lose a pool (FLUSHALL, a restart without persistence) or put back an older copy
// of it (a failover to a replica that lagged, a restart from an older snapshot). PostgreSQL is
// the record both are repaired from, through two things kept on the shard of the pool's sale
// or product: the pool's generation, and the ledger of every reservation it granted, numbered
// by a sequence the pool keeps with its stock. Redis holds the generation and the last number
// with the pool, and every reservation returns both. The ledger refuses a record whose
// generation is not the current one, or whose number was already recorded for another
// order; the buyer's order is then not written, the pool is rebuilt, and the reservation is
// made again in the rebuilt pool. An older copy of the pool hands out numbers that were
// already handed out, so its first reservation is refused: a stale pool is caught before it
// sells. Reconciliation also rebuilds a pool that lacks the hold of a live order, which
// catches a stale copy that nobody has bought from since it came back.
//
// A rebuild first starts a new generation. The update of the generation row waits for the
// ledger statements that read it, and any record after it is refused, so once it returns
// every reservation of the lost or stale pool is either in the ledger or will never have an
// order. The pool is then built from the orders that hold units, plus the reservations of the
// last OrphanGrace whose orders are not written yet (their inserts may still be running), and
// loaded with the new generation, numbering on from the highest recorded. There is no fixed
// wait: a rebuild takes a few reads, and a buyer waits for it at most RebuildWait, then is
// answered UNAVAILABLE with a retry-after, as is a buyer whose reservation Redis did not
// answer. Across processes the generation decides: Load keeps a pool of the same or a later
// generation and replaces an earlier one whole.
//
// Reconciliation also makes each pool agree with itself and with PostgreSQL: a product pool's
// quantity is the product's stock, the stock is quantity − Σ holds, each buyer's count is the
// sum of their holds, holds of orders never written or finished are released. Each repair is
// counted by kind (CountRepair). A product's stock is written to PostgreSQL first and the
// pool follows before the row commits, so a refused update changes neither; a crash between
// the two leaves the pool ahead, which reconciliation sets back. Reconciliation reads the
// stock under the row's lock, so it waits for an update in flight rather than undoing it.
//
// A sale's window is judged by the Redis server's clock inside the reservation script, the
// one clock all API replicas share, so replicas with drifting clocks open and close a sale at
// the same instant. Statuses shown to readers (SaleStatus) use the process's clock; they only
// describe.
//
// One double fault is not covered: a process that dies between taking units and recording
// them, followed by Redis going back to a copy older than that reservation. The number it was
// given is then never recorded, so the older copy's reuse of that one number is not refused,
// and that one order is accepted from the older copy's count; the next number is refused.
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

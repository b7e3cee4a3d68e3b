// Package checkout sells: it creates flash sales, places orders by taking units from a stock
// pool in Redis and then writing the order (with its outbox event) to the buyer's shard,
// cancels and expires orders, and reconciles the pools with PostgreSQL.
//
// The order of the two writes is what keeps the invariants. Units are taken first, in one
// atomic script, so two buyers can never get the same unit. The order row follows; if it
// cannot be written, the units go back, but only once we know the row does not exist. A
// process that dies in between leaves a hold with no order, which reconciliation returns
// after a grace period. Redis losing its data entirely is repaired by rebuilding each pool
// from the orders that hold units.
package checkout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale"
)

// SoldOutMemo remembers, in this process, pools that answered SOLD_OUT, so that the stampede
// after a sell-out is answered without a Redis round trip. It forgets a pool when stock comes
// back (a cancel or an expiry announced over pub/sub).
type SoldOutMemo interface {
	IsSoldOut(pool flashsale.PoolKey) bool
	MarkSoldOut(pool flashsale.PoolKey)
	Clear(pool flashsale.PoolKey)
	// Any reports, cheaply, whether some pool may be marked: false means IsSoldOut is false
	// for every pool.
	Any() bool
}

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
	// WriteTimeout bounds the order insert after units were taken. Default 2s.
	WriteTimeout time.Duration
	// RebuildFence is how long a rebuild of a lost pool waits before reading PostgreSQL, so
	// that order inserts in flight when Redis lost the pool have committed or failed. It must
	// exceed WriteTimeout. Default WriteTimeout + 1s.
	RebuildFence time.Duration
	// OrphanGrace is how old a hold with no order must be before reconciliation returns its
	// units. Default 30s, far above WriteTimeout.
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
	if c.RebuildFence == 0 {
		c.RebuildFence = c.WriteTimeout + time.Second
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
	stock     flashsale.StockEvents
	soldOut   SoldOutMemo
	attempts  AttemptCounter
	stats     flashsale.StatsReader
	updates   flashsale.OrderUpdates
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	observe   func(step string, d time.Duration)

	loads singleflight.Group // one rebuild per pool per process at a time
	// sales caches flash sales by id: a sale's terms never change after creation, and the
	// hot path must not read PostgreSQL for them on every attempt.
	salesMu sync.RWMutex
	saleMap map[flashsale.SaleID]*flashsale.FlashSale
}

// Deps are the service's collaborators.
type Deps struct {
	Sales     flashsale.SaleStore
	Products  flashsale.ProductStore
	Orders    flashsale.OrderStore
	Inventory flashsale.Inventory
	Stock     flashsale.StockEvents
	SoldOut   SoldOutMemo
	Attempts  AttemptCounter         // optional: attempts refused from memory go uncounted without it
	Stats     flashsale.StatsReader  // optional
	Updates   flashsale.OrderUpdates // optional: live order status for subscriptions
	Log       *slog.Logger
	// ObserveStep, if set, is told how long each step of every placed order took: StepReserve
	// (the units taken in Redis) and StepWrite (the order and its event in PostgreSQL).
	ObserveStep func(step string, d time.Duration)
}

// The steps of a placed order, as ObserveStep names them.
const (
	StepReserve = "reserve"
	StepWrite   = "write"
)

// New returns a service.
func New(d Deps, cfg Config) *Service {
	return &Service{
		sales: d.Sales, products: d.Products, orders: d.Orders, inventory: d.Inventory,
		stock: d.Stock, soldOut: d.SoldOut, attempts: d.Attempts, stats: d.Stats, updates: d.Updates, log: d.Log, cfg: cfg.withDefaults(), now: time.Now,
		observe: d.ObserveStep, saleMap: map[flashsale.SaleID]*flashsale.FlashSale{},
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

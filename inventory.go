package flashsale

import (
	"context"
	"time"
)

// A stock pool is a counted set of units sold under one set of terms: a flash sale's quantity,
// or a product's regular stock. Pools live in Redis, where one script checks the terms and
// takes the units atomically; PostgreSQL's orders are the record the pool is rebuilt from.
//
// The pool keeps a hold per order that has units: remaining = quantity − Σ holds, always.
// A hold is taken by Reserve and given back once by Release, so a reservation whose order was
// never written can be found (a hold with no order) and returned by reconciliation.

// PoolKey names a pool: "sale:<id>" or "prd:<id>".
type PoolKey string

// SalePool and ProductPool return the pool keys of a sale and of a product's regular stock.
func SalePool(id SaleID) PoolKey       { return PoolKey("sale:" + id.String()) }
func ProductPool(id ProductID) PoolKey { return PoolKey("prd:" + id.String()) }

// PoolTerms are the rules of a pool. Zero times mean always open; zero PerUserLimit means no
// limit per buyer.
type PoolTerms struct {
	Quantity     int
	StartsAt     time.Time
	EndsAt       time.Time
	PerUserLimit int
}

// Hold is one order's claim on units of a pool.
type Hold struct {
	OrderID  OrderID
	UserID   UserID
	Quantity int
	// IdempotencyKey is the buyer's key for the order; the pool remembers it so that a retry
	// with the same key finds the same order.
	IdempotencyKey string
	At             time.Time
}

// Reservation is what Reserve did.
type Reservation struct {
	// OrderID is the hold's order: the new one, or, when Duplicate, the order the buyer's
	// idempotency key already made.
	OrderID   OrderID
	Duplicate bool
	Remaining int
}

// ErrPoolNotLoaded is returned by Reserve and friends when Redis holds no such pool (never
// loaded, or lost in a restart or FLUSHALL): the caller rebuilds it from PostgreSQL.
var ErrPoolNotLoaded = Errorf(EINTERNAL, "stock is being recounted; try again")

// ErrSoldOut is Reserve's answer when no unit is left. Asking for more units than remain is
// SOLD_OUT too, but with another error ("only 2 left"): the pool is not sold out.
var ErrSoldOut = Errorf(ESOLDOUT, "sold out")

// Inventory keeps stock pools. Implementations must be safe for concurrent use by many
// processes.
type Inventory interface {
	// Load writes a pool with its terms and holds, unless Redis already has it; it reports
	// whether it wrote. Holds come from the orders that keep units (PENDING and PAID).
	Load(ctx context.Context, pool PoolKey, terms PoolTerms, holds []Hold) (bool, error)
	// Reserve atomically checks, in this order: the idempotency key (a known key returns the
	// earlier order with Duplicate set and takes nothing), the window (SALE_NOT_ACTIVE), the
	// per-user limit counting the buyer's current holds (LIMIT_EXCEEDED) and the stock
	// (SOLD_OUT); then it takes the units and records the hold. ErrPoolNotLoaded.
	Reserve(ctx context.Context, pool PoolKey, h Hold, now time.Time) (Reservation, error)
	// Release gives a hold's units back, at most once per order; it reports whether it did.
	// Releasing an unknown order is not an error. ErrPoolNotLoaded.
	Release(ctx context.Context, pool PoolKey, order OrderID) (released bool, remaining int, err error)
	// Abandon is Release for an order that was never written: it also forgets the order's
	// idempotency key, so that the buyer's retry with that key can buy again instead of
	// waiting for an order that will never exist. ErrPoolNotLoaded.
	Abandon(ctx context.Context, pool PoolKey, order OrderID) (released bool, remaining int, err error)
	// Remaining returns the units left. ErrPoolNotLoaded.
	Remaining(ctx context.Context, pool PoolKey) (int, error)
	// Holds lists the pool's holds. ErrPoolNotLoaded.
	Holds(ctx context.Context, pool PoolKey) ([]Hold, error)
	// SetQuantity changes a pool's quantity (a product's stock was edited). CONFLICT if the
	// new quantity is below the units held. ErrPoolNotLoaded.
	SetQuantity(ctx context.Context, pool PoolKey, quantity int) (remaining int, err error)
	// Attempts returns how many reservations the pool was asked for, granted or not (the
	// analytics' conversion rate). ErrPoolNotLoaded.
	Attempts(ctx context.Context, pool PoolKey) (int, error)
	// Forget deletes a pool (tests, and pools whose sale ended long ago).
	Forget(ctx context.Context, pool PoolKey) error
}

// StockEvents carries stock changes between processes (Redis pub/sub): every process that
// changes a pool publishes the new remaining count, and every API process listens.
type StockEvents interface {
	// PublishStock announces a pool's remaining count.
	PublishStock(ctx context.Context, pool PoolKey, remaining int) error
}

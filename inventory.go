package flashsale

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A stock pool is a counted set of units sold under one set of terms: a flash sale's quantity,
// or a product's regular stock. Pools live in Redis, where one script checks the terms and
// takes the units atomically; PostgreSQL's orders are the record the pool is rebuilt from.
//
// The pool keeps a hold per order that has units: remaining = quantity − Σ holds, always.
// A hold is taken by Reserve and given back once by Release, so a reservation whose order was
// never written can be found (a hold with no order) and returned by reconciliation.
//
// A pool also carries a version (PoolVersion): the generation PostgreSQL gave it when it was
// last built, and the sequence number of its last reservation. A ReservationLedger in
// PostgreSQL records each granted reservation by the two before its order may commit, which
// is how a pool that Redis lost, or put back as an older copy, is told apart from the live
// one (see package checkout).

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
	// Seq is the pool's sequence number of the reservation that made the hold; 0 for a hold
	// loaded from PostgreSQL.
	Seq int64
}

// PoolVersion is where a pool stands in PostgreSQL's record of it: Generation changes each
// time the pool is built from PostgreSQL, and Seq counts the reservations granted since the
// pool began (a rebuild carries on from the highest recorded).
type PoolVersion struct {
	Generation int64
	Seq        int64
}

// Bucket returns the bucket of the sale or product a pool sells, where PostgreSQL keeps its
// record (the pool's generation and ledger).
func (p PoolKey) Bucket() (int, error) {
	kind, id, _ := strings.Cut(string(p), ":")
	switch kind {
	case "sale":
		sid, err := ParseSaleID(id)
		return sid.Bucket(), err
	case "prd":
		pid, err := ParseProductID(id)
		return pid.Bucket(), err
	}
	return 0, fmt.Errorf("unknown pool %q", p)
}

// Reservation is what Reserve did.
type Reservation struct {
	// OrderID is the hold's order: the new one, or, when Duplicate, the order the buyer's
	// idempotency key already made.
	OrderID   OrderID
	Duplicate bool
	Remaining int
	// Version is the pool's generation and the sequence number of this reservation (of the
	// earlier one, when Duplicate): what the ledger records before the order commits.
	Version PoolVersion
}

// ErrPoolNotLoaded is returned by Reserve and friends when Redis holds no such pool (never
// loaded, or lost in a restart or FLUSHALL): the caller rebuilds it from PostgreSQL. A buyer
// who gets it may send the same request again shortly.
var ErrPoolNotLoaded = Retryable(EUNAVAILABLE, time.Second, "stock is being recounted; try again")

// ErrStalePool is a ReservationLedger's answer when a reservation came from a pool that is
// not the live one: an older generation, or a sequence number already recorded for another
// order (Redis was put back as an older copy). The pool must be rebuilt; the buyer may send
// the same request again shortly.
var ErrStalePool = Retryable(EUNAVAILABLE, time.Second, "stock is being recounted; try again")

// ErrSoldOut is Reserve's answer when no unit is left. Asking for more units than remain is
// SOLD_OUT too, but with another error ("only 2 left"): the pool is not sold out.
var ErrSoldOut = Errorf(ESOLDOUT, "sold out")

// Inventory keeps stock pools. Implementations must be safe for concurrent use by many
// processes.
type Inventory interface {
	// Load writes a pool with its terms, holds and version, unless Redis already has it at
	// the same or a later generation; it reports whether it wrote. A pool of an earlier
	// generation (a stale copy) is replaced whole. Holds come from the orders that keep
	// units (PENDING and PAID) and the reservations whose orders may still be being written.
	Load(ctx context.Context, pool PoolKey, terms PoolTerms, holds []Hold, v PoolVersion) (bool, error)
	// Reserve atomically checks, in this order: the idempotency key (a known key returns the
	// earlier order with Duplicate set and takes nothing), the window by the Redis server's
	// clock, one clock for every replica (SALE_NOT_ACTIVE), the per-user limit counting the
	// buyer's current holds (LIMIT_EXCEEDED) and the stock (SOLD_OUT); then it takes the
	// units, numbers the reservation and records the hold. The hold's time is h.At, or now
	// if zero. ErrPoolNotLoaded.
	Reserve(ctx context.Context, pool PoolKey, h Hold) (Reservation, error)
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
	// Version returns the pool's generation and last sequence number. ErrPoolNotLoaded.
	Version(ctx context.Context, pool PoolKey) (PoolVersion, error)
	// Repair makes the pool agree with itself and with PostgreSQL: its quantity becomes
	// quantity, its stock quantity − Σ holds, and each buyer's count the sum of their holds.
	// It reports what it had to change. ErrPoolNotLoaded.
	Repair(ctx context.Context, pool PoolKey, quantity int) (PoolRepairs, error)
	// Forget deletes a pool (tests, and pools whose sale ended long ago).
	Forget(ctx context.Context, pool PoolKey) error
}

// PoolRepairs says what Repair changed.
type PoolRepairs struct {
	Quantity bool // the quantity differed from PostgreSQL's
	Stock    bool // the stock was not quantity − Σ holds
	Buyers   bool // some buyer's count was not the sum of their holds
}

// ReservationLedger is PostgreSQL's record of the reservations each pool granted, kept on
// the shard of the pool's sale or product. It makes a reservation visible before its order
// commits, and refuses reservations from a pool that is not the live one.
type ReservationLedger interface {
	// Record notes a reservation (h.Seq, made by a pool of generation gen) before its order
	// commits. Recording the same order again is not an error. ErrStalePool if gen is not
	// the pool's generation or h.Seq is recorded for another order.
	Record(ctx context.Context, pool PoolKey, gen int64, h Hold) error
	// Fence starts a new generation of the pool, unless it is already past seen, and returns
	// the generation now current. It waits for records in flight, so that once it returns
	// every reservation of an earlier generation is either recorded or will be refused. A
	// pool never seen before starts at generation 1 (seen 0 then starts nothing new).
	Fence(ctx context.Context, pool PoolKey, seen int64) (int64, error)
	// Recorded returns the highest sequence number recorded for the pool, and the
	// reservations recorded in the last `within` (their At is the time recorded).
	Recorded(ctx context.Context, pool PoolKey, within time.Duration) (maxSeq int64, recent []Hold, err error)
}

// StockEvents carries stock changes between processes (Redis pub/sub): every process that
// changes a pool publishes the new remaining count, and every API process listens.
type StockEvents interface {
	// PublishStock announces a pool's remaining count.
	PublishStock(ctx context.Context, pool PoolKey, remaining int) error
}

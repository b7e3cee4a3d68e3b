package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

var _ flashsale.Inventory = (*Inventory)(nil)

// holdsScanCount is how many holds one HSCAN step asks for: a pool may hold many thousands,
// and one HGETALL of them all would stall the server for every other buyer.
const holdsScanCount = 1000

// Inventory keeps stock pools in Redis (see the package comment). It is safe for concurrent
// use by many goroutines and many processes.
type Inventory struct {
	client   goredis.UniversalClient
	prefix   string
	scripts  scripts
	reserves *combine.Combiner[reserveCall, any] // see reservations.go
}

// NewInventory returns an Inventory on client. Every key starts with prefix, so that tests
// sharing a server stay apart; production uses "". The prefix must not contain "{", which
// would change the keys' hash tag.
func NewInventory(client goredis.UniversalClient, prefix string) *Inventory {
	inv := &Inventory{client: client, prefix: prefix, scripts: newScripts()}
	inv.reserves = inv.newReservations()
	return inv
}

func (inv *Inventory) keys(pool flashsale.PoolKey) poolKeys { return newPoolKeys(inv.prefix, pool) }

// Load writes pool with its terms, holds and version unless Redis already has it at the
// same or a later generation, and reports whether it wrote. A pool of an earlier generation
// is replaced whole. The remaining count is Quantity minus the held units, and the buyers'
// held units and idempotency keys are rebuilt from the holds.
func (inv *Inventory) Load(ctx context.Context, pool flashsale.PoolKey, terms flashsale.PoolTerms, holds []flashsale.Hold, v flashsale.PoolVersion) (bool, error) {
	if terms.Quantity < 0 || terms.PerUserLimit < 0 {
		return false, fmt.Errorf("load %s: negative quantity %d or limit %d", pool, terms.Quantity, terms.PerUserLimit)
	}
	if v.Generation <= 0 || v.Seq < 0 {
		return false, fmt.Errorf("load %s: invalid version %+v", pool, v)
	}
	args := make([]any, 0, 6+5*len(holds))
	args = append(args, terms.Quantity, unixMs(terms.StartsAt), unixMs(terms.EndsAt), terms.PerUserLimit, v.Generation, v.Seq)
	seen := make(map[flashsale.OrderID]bool, len(holds))
	for _, h := range holds {
		// The script sums the holds as given: a repeated order would count twice.
		if h.Quantity <= 0 || h.OrderID <= 0 || h.UserID <= 0 || seen[h.OrderID] {
			return false, fmt.Errorf("load %s: invalid or repeated hold %+v", pool, h)
		}
		seen[h.OrderID] = true
		args = append(args, formatID(h.OrderID), holdValue(h), formatID(h.UserID), h.Quantity,
			idemField(h.UserID, h.IdempotencyKey))
	}
	out, err := inv.runScript(ctx, inv.scripts.load, inv.keys(pool).all(), args...)
	if err != nil {
		return false, fmt.Errorf("load %s: %w", pool, err)
	}
	n, ok := out.(int64)
	if !ok {
		return false, fmt.Errorf("load %s: unexpected script reply %#v", pool, out)
	}
	return n == 1, nil
}

// Reserve takes h.Quantity units of pool for h.OrderID, checking first the buyer's
// idempotency key, then the window by the Redis server's clock, then the per-user limit, then
// the stock. It returns SALE_NOT_ACTIVE, LIMIT_EXCEEDED, SOLD_OUT or ErrPoolNotLoaded. The
// hold records h.At, or this process's time if h.At is zero: reconciliation compares it with
// its own clock, within a grace far longer than any drift between replicas.
//
// The window is judged by Redis's clock (TIME in the script), not the caller's: every API
// replica then opens and closes a sale at the same instant, whatever its own clock says.
func (inv *Inventory) Reserve(ctx context.Context, pool flashsale.PoolKey, h flashsale.Hold) (flashsale.Reservation, error) {
	if h.Quantity <= 0 {
		return flashsale.Reservation{}, flashsale.Errorf(flashsale.EINVALID, "quantity must be at least 1")
	}
	if h.OrderID <= 0 || h.UserID <= 0 {
		return flashsale.Reservation{}, fmt.Errorf("reserve %s: hold without order or user: %+v", pool, h)
	}
	if h.At.IsZero() {
		h.At = time.Now()
	}
	call := reserveCall{keys: inv.keys(pool).all(), args: []any{
		formatID(h.OrderID), formatID(h.UserID), h.Quantity,
		idemField(h.UserID, h.IdempotencyKey), holdHead(h), h.IdempotencyKey}}
	// Sent again while the pool's slot moves (cluster.go): the script answers a resent
	// order with the hold it already made, so no retry takes units twice.
	v, err := retrySlotMoves(ctx, func() (any, error) { return inv.reserves.Do(ctx, 0, call) })
	if err != nil {
		return flashsale.Reservation{}, fmt.Errorf("reserve %s: %w", pool, err)
	}
	res, err := reserveResult(h, v)
	// The user-facing errors, ErrPoolNotLoaded among them, go back as they are.
	var fe *flashsale.Error
	if err != nil && !errors.As(err, &fe) {
		err = fmt.Errorf("reserve %s: %w", pool, err)
	}
	return res, err
}

// reserveResult turns reserve.lua's reply into a Reservation or a user-facing error.
func reserveResult(h flashsale.Hold, v any) (flashsale.Reservation, error) {
	r, err := toReply(v)
	if err != nil {
		return flashsale.Reservation{}, err
	}
	switch r.status() {
	case "OK":
		left, err1 := r.int(1)
		seq, err2 := r.int(2)
		gen, err3 := r.int(3)
		return flashsale.Reservation{OrderID: h.OrderID, Remaining: remaining(left),
			Version: flashsale.PoolVersion{Generation: gen, Seq: seq}}, errors.Join(err1, err2, err3)
	case "DUPLICATE":
		order, err1 := r.int(1)
		left, err2 := r.int(2)
		gen, err3 := r.int(3)
		return flashsale.Reservation{OrderID: flashsale.OrderID(order), Duplicate: true, Remaining: remaining(left),
			Version: flashsale.PoolVersion{Generation: gen}}, errors.Join(err1, err2, err3)
	case "NOT_LOADED":
		return flashsale.Reservation{}, flashsale.ErrPoolNotLoaded
	case "NOT_STARTED":
		return flashsale.Reservation{}, flashsale.Errorf(flashsale.ESALENOTACTIVE, "this sale has not started yet")
	case "ENDED":
		return flashsale.Reservation{}, flashsale.Errorf(flashsale.ESALENOTACTIVE, "this sale has ended")
	case "LIMIT_EXCEEDED":
		limit, err1 := r.int(1)
		held, err2 := r.int(2)
		if err := errors.Join(err1, err2); err != nil {
			return flashsale.Reservation{}, err
		}
		return flashsale.Reservation{}, flashsale.Errorf(flashsale.ELIMITEXCEEDED,
			"each buyer may hold at most %d of this item and you already hold %d", limit, held)
	case "SOLD_OUT":
		left, err := r.int(1)
		if err != nil {
			return flashsale.Reservation{}, err
		}
		if left <= 0 {
			return flashsale.Reservation{}, flashsale.ErrSoldOut
		}
		return flashsale.Reservation{}, flashsale.Errorf(flashsale.ESOLDOUT, "only %d left", left)
	}
	return flashsale.Reservation{}, fmt.Errorf("unexpected script reply %v", []any(r))
}

// Release gives order's units back to pool, at most once, and reports whether it did and the
// units now remaining. An order that holds nothing is not an error. ErrPoolNotLoaded.
func (inv *Inventory) Release(ctx context.Context, pool flashsale.PoolKey, order flashsale.OrderID) (bool, int, error) {
	return inv.release(ctx, pool, order, "")
}

// Abandon releases an order that was never written and forgets its idempotency key.
func (inv *Inventory) Abandon(ctx context.Context, pool flashsale.PoolKey, order flashsale.OrderID) (bool, int, error) {
	return inv.release(ctx, pool, order, "forget")
}

func (inv *Inventory) release(ctx context.Context, pool flashsale.PoolKey, order flashsale.OrderID, mode string) (bool, int, error) {
	v, err := inv.runScript(ctx, inv.scripts.release, inv.keys(pool).all(), formatID(order), mode)
	if err != nil {
		return false, 0, fmt.Errorf("release %s from %s: %w", order, pool, err)
	}
	r, err := toReply(v)
	if err != nil {
		return false, 0, fmt.Errorf("release %s from %s: %w", order, pool, err)
	}
	switch r.status() {
	case "NOT_LOADED":
		return false, 0, flashsale.ErrPoolNotLoaded
	case "RELEASED", "UNKNOWN":
		left, err := r.int(1)
		if err != nil {
			return false, 0, fmt.Errorf("release %s from %s: %w", order, pool, err)
		}
		return r.status() == "RELEASED", remaining(left), nil
	}
	return false, 0, fmt.Errorf("release %s from %s: unexpected script reply %v", order, pool, []any(r))
}

// Remaining returns the units of pool left to sell. ErrPoolNotLoaded.
func (inv *Inventory) Remaining(ctx context.Context, pool flashsale.PoolKey) (int, error) {
	left, err := inv.client.Get(ctx, inv.keys(pool).stock).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, flashsale.ErrPoolNotLoaded
	} else if err != nil {
		return 0, fmt.Errorf("remaining of %s: %w", pool, err)
	}
	return remaining(left), nil
}

// Version returns pool's generation and last sequence number. ErrPoolNotLoaded.
func (inv *Inventory) Version(ctx context.Context, pool flashsale.PoolKey) (flashsale.PoolVersion, error) {
	vals, err := inv.client.HMGet(ctx, inv.keys(pool).meta, "gen", "seq").Result()
	if err != nil {
		return flashsale.PoolVersion{}, fmt.Errorf("version of %s: %w", pool, err)
	}
	if vals[0] == nil {
		return flashsale.PoolVersion{}, flashsale.ErrPoolNotLoaded
	}
	gen, err1 := strconv.ParseInt(fmt.Sprint(vals[0]), 10, 64)
	seq, err2 := strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return flashsale.PoolVersion{}, fmt.Errorf("version of %s: %w", pool, err)
	}
	return flashsale.PoolVersion{Generation: gen, Seq: seq}, nil
}

// Repair sets pool's quantity and recomputes its stock and buyers' counts from its holds, and
// reports what it changed. ErrPoolNotLoaded.
func (inv *Inventory) Repair(ctx context.Context, pool flashsale.PoolKey, quantity int) (flashsale.PoolRepairs, error) {
	v, err := inv.runScript(ctx, inv.scripts.repair, inv.keys(pool).all(), quantity)
	if err != nil {
		return flashsale.PoolRepairs{}, fmt.Errorf("repair %s: %w", pool, err)
	}
	r, err := toReply(v)
	if err != nil {
		return flashsale.PoolRepairs{}, fmt.Errorf("repair %s: %w", pool, err)
	}
	switch r.status() {
	case "NOT_LOADED":
		return flashsale.PoolRepairs{}, flashsale.ErrPoolNotLoaded
	case "OK":
		q, err1 := r.int(1)
		st, err2 := r.int(2)
		b, err3 := r.int(3)
		if err := errors.Join(err1, err2, err3); err != nil {
			return flashsale.PoolRepairs{}, fmt.Errorf("repair %s: %w", pool, err)
		}
		return flashsale.PoolRepairs{Quantity: q == 1, Stock: st == 1, Buyers: b == 1}, nil
	}
	return flashsale.PoolRepairs{}, fmt.Errorf("repair %s: unexpected script reply %v", pool, []any(r))
}

// Holds lists pool's holds in order id order, which is the order they were made in.
// ErrPoolNotLoaded.
//
// It reads the holds in HSCAN steps rather than at once, so the list is not one snapshot: a
// hold taken or released meanwhile may or may not appear. Reconciliation, its user, checks
// each hold against its order anyway.
func (inv *Inventory) Holds(ctx context.Context, pool flashsale.PoolKey) ([]flashsale.Hold, error) {
	k := inv.keys(pool)
	n, err := inv.client.HExists(ctx, k.meta, "gen").Result()
	if err != nil {
		return nil, fmt.Errorf("holds of %s: %w", pool, err)
	} else if !n {
		return nil, flashsale.ErrPoolNotLoaded
	}
	byOrder := map[flashsale.OrderID]flashsale.Hold{}
	var cursor uint64
	for {
		kv, next, err := inv.client.HScan(ctx, k.holds, cursor, "", holdsScanCount).Result()
		if err != nil {
			return nil, fmt.Errorf("holds of %s: %w", pool, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			h, err := parseHold(kv[i], kv[i+1])
			if err != nil {
				return nil, fmt.Errorf("holds of %s: %w", pool, err)
			}
			// HSCAN may return a field twice while the hash is rehashing.
			byOrder[h.OrderID] = h
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	holds := make([]flashsale.Hold, 0, len(byOrder))
	for _, h := range byOrder {
		holds = append(holds, h)
	}
	slices.SortFunc(holds, func(a, b flashsale.Hold) int { return cmp.Compare(a.OrderID, b.OrderID) })
	return holds, nil
}

// SetQuantity changes pool's quantity, keeping its holds, and returns the units now
// remaining. CONFLICT if quantity is below the units held; ErrPoolNotLoaded.
func (inv *Inventory) SetQuantity(ctx context.Context, pool flashsale.PoolKey, quantity int) (int, error) {
	if quantity < 0 {
		return 0, flashsale.Errorf(flashsale.EINVALID, "quantity must not be negative")
	}
	v, err := inv.runScript(ctx, inv.scripts.setQuantity, inv.keys(pool).all(), quantity)
	if err != nil {
		return 0, fmt.Errorf("set quantity of %s: %w", pool, err)
	}
	r, err := toReply(v)
	if err != nil {
		return 0, fmt.Errorf("set quantity of %s: %w", pool, err)
	}
	switch r.status() {
	case "NOT_LOADED":
		return 0, flashsale.ErrPoolNotLoaded
	case "CONFLICT":
		held, err := r.int(1)
		if err != nil {
			return 0, fmt.Errorf("set quantity of %s: %w", pool, err)
		}
		return 0, flashsale.Errorf(flashsale.ECONFLICT,
			"the quantity cannot be %d: orders already hold %d units", quantity, held)
	case "OK":
		left, err := r.int(1)
		if err != nil {
			return 0, fmt.Errorf("set quantity of %s: %w", pool, err)
		}
		return remaining(left), nil
	}
	return 0, fmt.Errorf("set quantity of %s: unexpected script reply %v", pool, []any(r))
}

// Attempts returns how many reservations pool was asked for since it was loaded, granted or
// not; retries of a reservation already made are not counted. ErrPoolNotLoaded.
//
// The count is kept by Reserve's script, so it misses requests answered without asking
// Redis (by the sold-out fast path) and starts again from zero if Redis loses its data.
func (inv *Inventory) Attempts(ctx context.Context, pool flashsale.PoolKey) (int, error) {
	k := inv.keys(pool)
	var exists *goredis.IntCmd
	var attempts *goredis.StringCmd
	// One round trip; both keys share a hash slot, so this also works on Redis Cluster.
	_, err := inv.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		exists = p.Exists(ctx, k.meta)
		attempts = p.Get(ctx, k.attempts)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("attempts of %s: %w", pool, err)
	}
	if exists.Val() == 0 {
		return 0, flashsale.ErrPoolNotLoaded
	}
	n, err := attempts.Int()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("attempts of %s: %w", pool, err)
	}
	return n, nil
}

// Forget deletes pool and all its holds and keys.
func (inv *Inventory) Forget(ctx context.Context, pool flashsale.PoolKey) error {
	// One DEL of keys in one hash slot: atomic, and allowed on Redis Cluster.
	if err := inv.client.Del(ctx, inv.keys(pool).all()...).Err(); err != nil {
		return fmt.Errorf("forget %s: %w", pool, err)
	}
	return nil
}

// remaining is the count callers see. The stock goes below zero only if a pool was loaded
// with more units held than its quantity (the quantity was lowered under existing orders);
// the pool then sells nothing until releases bring it back, and shows 0 meanwhile.
func remaining(left int64) int { return int(max(left, 0)) }

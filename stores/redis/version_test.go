package redis

import (
	"context"
	"testing"

	"github.com/flashsale/flashsale"
)

// Reservations are numbered one after another and carry the pool's generation; a resent
// reservation gets its own number back, not a new one.
func TestReserveNumbersReservations(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	ctx := context.Background()
	if _, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: 10}, nil, flashsale.PoolVersion{Generation: 3, Seq: 40}); err != nil {
		t.Fatal(err)
	}
	for i := range int64(3) {
		h := flashsale.Hold{OrderID: orderID(i), UserID: userID(i), Quantity: 1, IdempotencyKey: "k"}
		res := mustReserve(t, inv, pool, h)
		want := flashsale.PoolVersion{Generation: 3, Seq: 41 + i}
		if res.Version != want {
			t.Errorf("reservation %d: version %+v; want %+v", i, res.Version, want)
		}
		if again := mustReserve(t, inv, pool, h); again.Version != want || again.Duplicate {
			t.Errorf("resent reservation %d: %+v; want its own version %+v", i, again, want)
		}
	}
	holds, err := inv.Holds(ctx, pool)
	if err != nil || len(holds) != 3 || holds[0].Seq != 41 || holds[2].Seq != 43 {
		t.Errorf("holds = %+v, %v; want numbers 41 to 43", holds, err)
	}
	if v, err := inv.Version(ctx, pool); err != nil || v != (flashsale.PoolVersion{Generation: 3, Seq: 43}) {
		t.Errorf("Version = %+v, %v; want generation 3, seq 43", v, err)
	}
}

// Load keeps a pool of the same or a later generation and replaces an earlier one whole: a
// stale copy is not merged with, it is overwritten.
func TestLoadReplacesAnEarlierGeneration(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	terms := flashsale.PoolTerms{Quantity: 10, PerUserLimit: 2}
	if _, err := inv.Load(ctx, pool, terms, nil, flashsale.PoolVersion{Generation: 2}); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 2, IdempotencyKey: "stale"})
	kept := flashsale.Hold{OrderID: orderID(9), UserID: userID(9), Quantity: 3, IdempotencyKey: "kept", Seq: 7}
	for _, tt := range []struct {
		gen   int64
		wrote bool
	}{{1, false}, {2, false}, {3, true}, {3, false}} {
		wrote, err := inv.Load(ctx, pool, terms, []flashsale.Hold{kept}, flashsale.PoolVersion{Generation: tt.gen, Seq: 7})
		if err != nil || wrote != tt.wrote {
			t.Errorf("Load of generation %d = %v, %v; want %v", tt.gen, wrote, err, tt.wrote)
		}
	}
	holds := checkConserved(t, inv, c, pool, 10)
	if len(holds) != 1 || holds[0].OrderID != kept.OrderID || holds[0].Seq != 7 {
		t.Errorf("holds after the replacing Load = %+v; want only %+v", holds, kept)
	}
	// The stale copy's buyer and key are gone with it.
	res := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(2), UserID: userID(1), Quantity: 2, IdempotencyKey: "stale"})
	if res.Duplicate || res.Version != (flashsale.PoolVersion{Generation: 3, Seq: 8}) {
		t.Errorf("reservation after the replacing Load = %+v; want a fresh one, generation 3, seq 8", res)
	}
}

// Repair sets the quantity and recomputes the stock and the buyers' counts from the holds,
// and says what it changed; a pool in order is left alone.
func TestRepair(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 10})
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 2})
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(2), UserID: userID(2), Quantity: 3})
	k := inv.keys(pool)

	if r, err := inv.Repair(ctx, pool, 10); err != nil || r != (flashsale.PoolRepairs{}) {
		t.Errorf("Repair of a pool in order = %+v, %v; want nothing changed", r, err)
	}
	c.Set(ctx, k.stock, 9, 0)
	c.HSet(ctx, k.bought, formatID(userID(1)), 6, formatID(userID(7)), 1)
	r, err := inv.Repair(ctx, pool, 12)
	if want := (flashsale.PoolRepairs{Quantity: true, Stock: true, Buyers: true}); err != nil || r != want {
		t.Errorf("Repair = %+v, %v; want %+v", r, err, want)
	}
	checkConserved(t, inv, c, pool, 12)
	if left, _ := inv.Remaining(ctx, pool); left != 7 {
		t.Errorf("Remaining after Repair = %d; want 12 - 5 = 7", left)
	}
	if got, _ := c.HGetAll(ctx, k.bought).Result(); len(got) != 2 || got[formatID(userID(1))] != "2" || got[formatID(userID(2))] != "3" {
		t.Errorf("buyers after Repair = %v; want user 1: 2, user 2: 3", got)
	}
	_, err = inv.Repair(ctx, flashsale.SalePool(4242), 1)
	wantNotLoaded(t, "Repair of an unknown pool", err)
}

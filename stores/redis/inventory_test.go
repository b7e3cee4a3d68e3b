package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

var pool = flashsale.SalePool(42)

func TestReserveSellsExactlyTheStock(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	const units, buyers, attempts = 100, 1000, 5000
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: units, PerUserLimit: 1})

	var ids orders
	var mu sync.Mutex
	won := map[flashsale.UserID]flashsale.OrderID{}
	codes := map[string]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			user := userID(int64(i % buyers))
			h := flashsale.Hold{OrderID: ids.next(), UserID: user, Quantity: 1, IdempotencyKey: fmt.Sprint("k", i)}
			<-start
			res, err := inv.Reserve(ctx, pool, h)
			mu.Lock()
			defer mu.Unlock()
			codes[flashsale.ErrorCode(err)]++
			if err == nil {
				if res.Duplicate || res.OrderID != h.OrderID {
					t.Errorf("Reserve(%+v) = %+v; want a new hold of its own order", h, res)
				}
				if prev, ok := won[user]; ok {
					t.Errorf("buyer %d won twice: orders %d and %d", user, prev, h.OrderID)
				}
				won[user] = h.OrderID
			}
		})
	}
	close(start)
	wg.Wait()

	if codes[""] != units || len(won) != units {
		t.Errorf("%d reservations for %d buyers; want %d for %d", codes[""], len(won), units, units)
	}
	for code, n := range codes {
		if code != "" && code != flashsale.ESOLDOUT && code != flashsale.ELIMITEXCEEDED {
			t.Errorf("%d attempts failed with %s; want only SOLD_OUT or LIMIT_EXCEEDED", n, code)
		}
	}
	t.Logf("outcomes: %v", codes)
	if left, err := inv.Remaining(ctx, pool); err != nil || left != 0 {
		t.Errorf("Remaining = %d, %v; want 0", left, err)
	}
	holds := checkConserved(t, inv, c, pool, units)
	if len(holds) != units {
		t.Errorf("%d holds; want %d", len(holds), units)
	}
	for _, h := range holds {
		if won[h.UserID] != h.OrderID {
			t.Errorf("hold %+v is not the order its buyer was given (%d)", h, won[h.UserID])
		}
	}
	if n, err := inv.Attempts(ctx, pool); err != nil || n != attempts {
		t.Errorf("Attempts = %d, %v; want %d", n, err, attempts)
	}
}

func TestReserveSameKeyConcurrently(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 10})

	var ids orders
	var fresh, dups atomic.Int32
	results := make([]flashsale.Reservation, 50)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			h := flashsale.Hold{OrderID: ids.next(), UserID: userID(1), Quantity: 2, IdempotencyKey: "same|key"}
			res, err := inv.Reserve(ctx, pool, h)
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			if res.Duplicate {
				dups.Add(1)
			} else {
				fresh.Add(1)
			}
			results[i] = res
		})
	}
	wg.Wait()
	if fresh.Load() != 1 || dups.Load() != 49 {
		t.Fatalf("%d new holds and %d duplicates; want 1 and 49", fresh.Load(), dups.Load())
	}
	for _, res := range results {
		if res.OrderID != results[0].OrderID {
			t.Errorf("order ids %d and %d; want one order", res.OrderID, results[0].OrderID)
		}
	}
	holds := checkConserved(t, inv, c, pool, 10)
	if len(holds) != 1 || holds[0].OrderID != results[0].OrderID || holds[0].IdempotencyKey != "same|key" {
		t.Errorf("holds = %+v; want one of order %d with key same|key", holds, results[0].OrderID)
	}
	if n, _ := inv.Attempts(ctx, pool); n != 1 {
		t.Errorf("Attempts = %d; want 1 (duplicates are not new attempts)", n)
	}
}

func TestReserveDuplicateBeatsSellOutAndEnd(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	ctx := context.Background()
	// The window is judged by Redis's clock, so the sale really ends: a moment from now.
	ends := time.Now().Add(300 * time.Millisecond)
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 1, StartsAt: time.Now().Add(-time.Minute), EndsAt: ends, PerUserLimit: 1})

	first := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 1, IdempotencyKey: "a"})
	_, err := inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(2), UserID: userID(2), Quantity: 1, IdempotencyKey: "b"})
	wantCode(t, "second buyer", err, flashsale.ESOLDOUT)

	retry := func(when string) {
		res, err := inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(3), UserID: userID(1), Quantity: 1, IdempotencyKey: "a"})
		if err != nil || !res.Duplicate || res.OrderID != first.OrderID {
			t.Errorf("retry %s = %+v, %v; want duplicate of order %d", when, res, err, first.OrderID)
		}
	}
	retry("after the sell-out")
	time.Sleep(time.Until(ends) + 50*time.Millisecond)
	_, err = inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(4), UserID: userID(4), Quantity: 1, IdempotencyKey: "d"})
	wantCode(t, "a new buyer after the end", err, flashsale.ESALENOTACTIVE)
	retry("after the end")
}

func TestReserveResentIsNotDuplicate(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 5, PerUserLimit: 2})
	// A client that resends the script after losing its reply must be told the hold is its
	// own, with or without a key, and must not take units twice.
	for _, key := range []string{"k", ""} {
		h := flashsale.Hold{OrderID: orderID(int64(len(key))), UserID: userID(1), Quantity: 1, IdempotencyKey: key}
		mustReserve(t, inv, pool, h)
		res := mustReserve(t, inv, pool, h)
		if res.Duplicate || res.OrderID != h.OrderID {
			t.Errorf("resent %+v = %+v; want its own order, not a duplicate", h, res)
		}
	}
	checkConserved(t, inv, c, pool, 5)
	if left, _ := inv.Remaining(context.Background(), pool); left != 3 {
		t.Errorf("Remaining = %d; want 3", left)
	}
}

func TestReserveWindow(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	now := time.Now()
	pools := map[string]flashsale.PoolTerms{
		"before start": {Quantity: 100, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)},
		"open":         {Quantity: 100, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)},
		"after end":    {Quantity: 100, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Minute)},
		"no window":    {Quantity: 100},
	}
	want := map[string]string{"before start": flashsale.ESALENOTACTIVE, "open": "", "after end": flashsale.ESALENOTACTIVE, "no window": ""}
	i := 0
	for name, terms := range pools {
		i++
		p := flashsale.SalePool(flashsale.SaleID(i))
		mustLoad(t, inv, p, terms)
		// The hold's own time, as a replica with a wrong clock would set it, does not move
		// the window: Redis's clock judges it.
		for _, at := range []time.Time{terms.StartsAt.Add(time.Minute), terms.EndsAt.Add(time.Hour), now.Add(-24 * time.Hour)} {
			h := flashsale.Hold{OrderID: orderID(int64(i*10) + int64(at.Second())), UserID: userID(int64(i)), Quantity: 1, At: at}
			_, err := inv.Reserve(context.Background(), p, h)
			wantCode(t, name, err, want[name])
		}
	}
	_, err := inv.Reserve(context.Background(), flashsale.SalePool(flashsale.SaleID(99)), flashsale.Hold{OrderID: orderID(99), UserID: userID(99), Quantity: 1})
	wantNotLoaded(t, "unknown pool", err)
	p := flashsale.SalePool(flashsale.SaleID(100))
	mustLoad(t, inv, p, pools["before start"])
	_, err = inv.Reserve(context.Background(), p, flashsale.Hold{OrderID: orderID(100), UserID: userID(100), Quantity: 1})
	if msg := flashsale.ErrorMessage(err); !strings.Contains(msg, "not started") {
		t.Errorf("message before start = %q; want one saying it has not started", msg)
	}
}

func TestReserveLimitCountsCurrentHolds(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 100, PerUserLimit: 3})
	buyer := userID(7)

	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: buyer, Quantity: 2, IdempotencyKey: "1"})
	_, err := inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(2), UserID: buyer, Quantity: 2, IdempotencyKey: "2"})
	wantCode(t, "2 more over a limit of 3", err, flashsale.ELIMITEXCEEDED)
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(3), UserID: buyer, Quantity: 1, IdempotencyKey: "3"})

	if released, _, err := inv.Release(ctx, pool, orderID(1)); !released || err != nil {
		t.Fatalf("Release = %v, %v; want true, nil", released, err)
	}
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(4), UserID: buyer, Quantity: 2, IdempotencyKey: "4"})
	checkConserved(t, inv, c, pool, 100)
}

func TestSoldOutMessage(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 2})
	_, err := inv.Reserve(context.Background(), pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 3})
	wantCode(t, "3 of 2", err, flashsale.ESOLDOUT)
	if got, want := flashsale.ErrorMessage(err), "only 2 left"; got != want {
		t.Errorf("message = %q; want %q", got, want)
	}
	_, err = inv.Reserve(context.Background(), pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 0})
	wantCode(t, "quantity 0", err, flashsale.EINVALID)
}

func TestNotLoaded(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	ctx := context.Background()
	_, err := inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 1, IdempotencyKey: "k"})
	wantNotLoaded(t, "Reserve", err)
	_, _, err = inv.Release(ctx, pool, orderID(1))
	wantNotLoaded(t, "Release", err)
	_, err = inv.Remaining(ctx, pool)
	wantNotLoaded(t, "Remaining", err)
	_, err = inv.Holds(ctx, pool)
	wantNotLoaded(t, "Holds", err)
	_, err = inv.SetQuantity(ctx, pool, 5)
	wantNotLoaded(t, "SetQuantity", err)
	_, err = inv.Attempts(ctx, pool)
	wantNotLoaded(t, "Attempts", err)
	if err != flashsale.ErrPoolNotLoaded {
		t.Errorf("error is %v; want the ErrPoolNotLoaded variable itself", err)
	}
}

func TestLoadWritesOnce(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 10, PerUserLimit: 1})
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 1, IdempotencyKey: "k"})

	wrote, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: 500}, nil, flashsale.PoolVersion{Generation: 1})
	if err != nil || wrote {
		t.Fatalf("second Load = %v, %v; want false, nil", wrote, err)
	}
	if left, _ := inv.Remaining(ctx, pool); left != 9 {
		t.Errorf("Remaining = %d; want 9, untouched by the second Load", left)
	}
	_, err = inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(2), UserID: userID(1), Quantity: 1, IdempotencyKey: "k2"})
	wantCode(t, "limit after second Load", err, flashsale.ELIMITEXCEEDED)
}

func TestLoadManyHolds(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	const n, users, quantity = 20000, 5000, 50000
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	holds := make([]flashsale.Hold, n)
	held := 0
	for i := range holds {
		holds[i] = flashsale.Hold{
			OrderID: orderID(int64(i)), UserID: userID(int64(i % users)), Quantity: 1 + i%3,
			IdempotencyKey: fmt.Sprintf("key|%d", i), At: at.Add(time.Duration(i) * time.Millisecond),
		}
		held += holds[i].Quantity
	}
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: quantity}, holds...)

	got := checkConserved(t, inv, c, pool, quantity)
	if len(got) != n {
		t.Fatalf("%d holds after Load; want %d", len(got), n)
	}
	for i := range got {
		if got[i] != holds[i] {
			t.Fatalf("hold %d = %+v; want %+v", i, got[i], holds[i])
		}
	}
	if left, _ := inv.Remaining(ctx, pool); left != quantity-held {
		t.Errorf("Remaining = %d; want %d", left, quantity-held)
	}
	if k, err := c.HLen(ctx, inv.keys(pool).idem).Result(); err != nil || k != n {
		t.Errorf("%d idempotency keys, %v; want %d", k, err, n)
	}
	res := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(n + 1), UserID: holds[123].UserID, Quantity: 1, IdempotencyKey: "key|123"})
	if !res.Duplicate || res.OrderID != holds[123].OrderID {
		t.Errorf("retry of a loaded key = %+v; want duplicate of order %d", res, holds[123].OrderID)
	}
}

func TestLoadRejectsBadHolds(t *testing.T) {
	t.Parallel()
	inv, _, _ := newInventory(t)
	ctx := context.Background()
	h := flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 1}
	for name, holds := range map[string][]flashsale.Hold{
		"repeated order": {h, h},
		"zero quantity":  {{OrderID: orderID(2), UserID: userID(1)}},
		"no user":        {{OrderID: orderID(3), Quantity: 1}},
	} {
		if wrote, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: 10}, holds, flashsale.PoolVersion{Generation: 1}); err == nil || wrote {
			t.Errorf("Load with %s = %v, %v; want an error", name, wrote, err)
		}
	}
	_, err := inv.Remaining(ctx, pool)
	wantNotLoaded(t, "Remaining after refused Loads", err)
}

func TestReleaseExactlyOnce(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 10, PerUserLimit: 5})
	h := flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 3, IdempotencyKey: "k"}
	mustReserve(t, inv, pool, h)

	var released atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, left, err := inv.Release(ctx, pool, h.OrderID)
			// Every call finds the hold already released or releases it: 10 either way.
			if err != nil || left != 10 {
				t.Errorf("Release = %v, %d, %v; want remaining 10", ok, left, err)
			}
			if ok {
				released.Add(1)
			}
		})
	}
	wg.Wait()
	if released.Load() != 1 {
		t.Errorf("%d releases reported; want exactly 1", released.Load())
	}
	if holds := checkConserved(t, inv, c, pool, 10); len(holds) != 0 {
		t.Errorf("holds after release = %+v; want none", holds)
	}
	if ok, left, err := inv.Release(ctx, pool, orderID(999)); ok || left != 10 || err != nil {
		t.Errorf("Release of an unknown order = %v, %d, %v; want false, 10, nil", ok, left, err)
	}
	// The order still exists, cancelled: a retry of its key finds it rather than buying again.
	res := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(2), UserID: h.UserID, Quantity: 3, IdempotencyKey: "k"})
	if !res.Duplicate || res.OrderID != h.OrderID {
		t.Errorf("retry after release = %+v; want duplicate of order %d", res, h.OrderID)
	}
}

func TestStockConservedUnderRandomMix(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	const quantity = 60
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: quantity, PerUserLimit: 6})

	var ids orders
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			var mine []flashsale.OrderID
			for i := range 150 {
				if len(mine) > 0 && rand.IntN(3) == 0 {
					k := rand.IntN(len(mine))
					if _, _, err := inv.Release(ctx, pool, mine[k]); err != nil {
						t.Errorf("Release: %v", err)
					}
					// Sometimes release it twice: the second must change nothing.
					if rand.IntN(2) == 0 {
						mine = append(mine[:k], mine[k+1:]...)
					}
					continue
				}
				h := flashsale.Hold{OrderID: ids.next(), UserID: userID(int64(w % 7)), Quantity: 1 + rand.IntN(3), IdempotencyKey: fmt.Sprint(w, "-", i)}
				_, err := inv.Reserve(ctx, pool, h)
				switch flashsale.ErrorCode(err) {
				case "":
					mine = append(mine, h.OrderID)
				case flashsale.ESOLDOUT, flashsale.ELIMITEXCEEDED:
				default:
					t.Errorf("Reserve: %v", err)
				}
			}
		})
	}
	wg.Wait()
	holds := checkConserved(t, inv, c, pool, quantity)
	perUser := map[flashsale.UserID]int{}
	for _, h := range holds {
		perUser[h.UserID] += h.Quantity
	}
	for u, n := range perUser {
		if n > 6 {
			t.Errorf("buyer %d holds %d; the limit is 6", u, n)
		}
	}
}

func TestRebuildAfterFlushAll(t *testing.T) {
	t.Parallel()
	url, _ := testenv.PrivateRedis(t)
	c := newClient(t, url)
	inv := NewInventory(c, "")
	ctx := context.Background()
	terms := flashsale.PoolTerms{Quantity: 10, PerUserLimit: 2, EndsAt: time.Now().Add(time.Hour)}
	mustLoad(t, inv, pool, terms)
	a, b := userID(1), userID(2)
	ra := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: a, Quantity: 2, IdempotencyKey: "ka"})
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(2), UserID: b, Quantity: 1, IdempotencyKey: "kb"})
	before, err := inv.Holds(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}

	// FLUSHALL keeps the script cache; SCRIPT FLUSH makes the next calls fall back to EVAL,
	// as after a restart.
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(3), UserID: b, Quantity: 1, IdempotencyKey: "kb2"})
	wantNotLoaded(t, "Reserve after FLUSHALL", err)

	mustLoad(t, inv, pool, terms, before...)
	after := checkConserved(t, inv, c, pool, 10)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("holds after rebuild = %+v; want %+v", after, before)
	}
	if left, _ := inv.Remaining(ctx, pool); left != 7 {
		t.Errorf("Remaining after rebuild = %d; want 7", left)
	}
	res := mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(4), UserID: a, Quantity: 1, IdempotencyKey: "ka"})
	if !res.Duplicate || res.OrderID != ra.OrderID {
		t.Errorf("retry of ka after rebuild = %+v; want duplicate of order %d", res, ra.OrderID)
	}
	_, err = inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(5), UserID: a, Quantity: 1, IdempotencyKey: "ka2"})
	wantCode(t, "buyer a over the limit after rebuild", err, flashsale.ELIMITEXCEEDED)
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(6), UserID: b, Quantity: 1, IdempotencyKey: "kb2"})
	_, err = inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(7), UserID: b, Quantity: 1, IdempotencyKey: "kb3"})
	wantCode(t, "buyer b over the limit after rebuild", err, flashsale.ELIMITEXCEEDED)
	checkConserved(t, inv, c, pool, 10)
}

func TestSetQuantity(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 10})
	mustReserve(t, inv, pool, flashsale.Hold{OrderID: orderID(1), UserID: userID(1), Quantity: 5})

	tests := []struct {
		quantity, want int
		code           string
	}{
		{4, 0, flashsale.ECONFLICT},
		{-1, 0, flashsale.EINVALID},
		{5, 0, ""},
		{20, 15, ""},
		{7, 2, ""},
	}
	for _, tt := range tests {
		got, err := inv.SetQuantity(ctx, pool, tt.quantity)
		wantCode(t, fmt.Sprint("SetQuantity(", tt.quantity, ")"), err, tt.code)
		if err == nil && got != tt.want {
			t.Errorf("SetQuantity(%d) = %d; want %d", tt.quantity, got, tt.want)
		}
	}
	checkConserved(t, inv, c, pool, 7)
}

func TestAttemptsAndForget(t *testing.T) {
	t.Parallel()
	inv, c, prefix := newInventory(t)
	ctx := context.Background()
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: 1})
	if n, err := inv.Attempts(ctx, pool); n != 0 || err != nil {
		t.Errorf("Attempts of a new pool = %d, %v; want 0, nil", n, err)
	}
	for i := range 3 {
		inv.Reserve(ctx, pool, flashsale.Hold{OrderID: orderID(int64(i)), UserID: userID(int64(i)), Quantity: 1, IdempotencyKey: "k"})
	}
	if n, err := inv.Attempts(ctx, pool); n != 3 || err != nil {
		t.Errorf("Attempts = %d, %v; want 3 (one sold, two sold out)", n, err)
	}

	if err := inv.Forget(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(ctx, prefix+"*").Result(); len(keys) != 0 {
		t.Errorf("keys left after Forget: %v", keys)
	}
	_, err := inv.Remaining(ctx, pool)
	wantNotLoaded(t, "Remaining after Forget", err)
}

func TestKeysShareHashTag(t *testing.T) {
	t.Parallel()
	for _, k := range newPoolKeys("p:", flashsale.ProductPool(7)).all() {
		if !strings.HasPrefix(k, "p:{prd:prd_7}:") {
			t.Errorf("key %q; want it under the hash tag {prd:prd_7}", k)
		}
	}
}

func TestAbandonForgetsTheKey(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.RedisClient(t)
	inv := NewInventory(client, prefix)
	ctx := context.Background()
	pool := flashsale.PoolKey("sale:" + testenv.Name())
	if _, err := inv.Load(ctx, pool, flashsale.PoolTerms{Quantity: 3, PerUserLimit: 1}, nil, flashsale.PoolVersion{Generation: 1}); err != nil {
		t.Fatal(err)
	}
	user := flashsale.NewUserID(5)
	first := flashsale.Hold{OrderID: flashsale.NewOrderID(user), UserID: user, Quantity: 1, IdempotencyKey: "k", At: time.Now()}
	if _, err := inv.Reserve(ctx, pool, first); err != nil {
		t.Fatal(err)
	}
	released, remaining, err := inv.Abandon(ctx, pool, first.OrderID)
	if err != nil || !released || remaining != 3 {
		t.Fatalf("abandon = %v, %d, %v; want released with 3 left", released, remaining, err)
	}
	again := first
	again.OrderID = flashsale.NewOrderID(user)
	res, err := inv.Reserve(ctx, pool, again)
	if err != nil || res.Duplicate || res.OrderID != again.OrderID {
		t.Errorf("retry of the abandoned key = %+v, %v; want a fresh reservation", res, err)
	}
	// A plain release keeps the key: the order exists, cancelled, and a retry finds it.
	if _, _, err := inv.Release(ctx, pool, again.OrderID); err != nil {
		t.Fatal(err)
	}
	third := again
	third.OrderID = flashsale.NewOrderID(user)
	res, err = inv.Reserve(ctx, pool, third)
	if err != nil || !res.Duplicate || res.OrderID != again.OrderID {
		t.Errorf("retry of a released key = %+v, %v; want the released order as a duplicate", res, err)
	}
}

package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

func TestSeedLockSellsUntilEmptyAlone(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	ctx := t.Context()
	inv := NewSeedLock(client, prefix)
	t.Cleanup(func() { client.Del(context.Background(), inv.stockKey("p"), inv.lockKey("p")) })
	if err := inv.Init(ctx, "p", 3); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for i, want := range []struct {
		ok        bool
		remaining int
	}{{true, 2}, {true, 1}, {true, 0}, {false, 0}, {false, 0}} {
		ok, remaining, err := inv.Reserve(ctx, "p", 1)
		if err != nil || ok != want.ok || remaining != want.remaining {
			t.Errorf("reservation %d = %v, %d, %v; want %v, %d, nil", i, ok, remaining, err, want.ok, want.remaining)
		}
	}
	if n, err := client.Exists(ctx, inv.lockKey("p")).Result(); err != nil || n != 0 {
		t.Errorf("lock exists = %d (%v) after the reservations; want it released", n, err)
	}
}

func TestSeedLockRefusesWhileLockedAndDropsTheLock(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	ctx := t.Context()
	inv := NewSeedLock(client, prefix)
	t.Cleanup(func() { client.Del(context.Background(), inv.stockKey("p"), inv.lockKey("p")) })
	if err := inv.Init(ctx, "p", 10); err != nil {
		t.Fatalf("Init: %v", err)
	}
	// Another buyer holds the lock.
	if err := client.Set(ctx, inv.lockKey("p"), "1", 10*time.Second).Err(); err != nil {
		t.Fatalf("take the lock: %v", err)
	}
	ok, _, err := inv.Reserve(ctx, "p", 1)
	if !errors.Is(err, ErrLockNotAcquired) || ok {
		t.Errorf("Reserve while locked = %v, %v; want false, %v", ok, err, ErrLockNotAcquired)
	}
	if left, err := inv.Remaining(ctx, "p"); err != nil || left != 10 {
		t.Errorf("Remaining after a refusal = %d, %v; want 10", left, err)
	}
	// The seed's `finally` deletes the lock even on the refused path: the holder's lock is gone.
	if n, err := client.Exists(ctx, inv.lockKey("p")).Result(); err != nil || n != 0 {
		t.Errorf("lock exists = %d (%v) after a refused buyer; want the seed's fault of deleting it", n, err)
	}
}

func TestRunSeedLockNeverOversells(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	const attempts, quantity = 2000, 100
	r, err := runSeedLock(t.Context(), client, prefix, attempts, 64, quantity)
	if err != nil {
		t.Fatalf("runSeedLock: %v", err)
	}
	if r.Sold > quantity || r.Sold+r.Remaining != quantity {
		t.Errorf("sold %d with %d remaining of %d; want no oversell and the stock conserved", r.Sold, r.Remaining, quantity)
	}
	if got := r.Sold + r.LockRefused + r.SoldOut + r.Errors; got != attempts || r.Errors != 0 {
		t.Errorf("sold %d + lock refused %d + sold out %d + errors %d = %d; want %d attempts, no errors",
			r.Sold, r.LockRefused, r.SoldOut, r.Errors, got, attempts)
	}
	if r.RefusedWithStock > r.LockRefused || r.PerS <= 0 {
		t.Errorf("refused with stock %d of %d refused, %v/s; want at most all refusals and a rate", r.RefusedWithStock, r.LockRefused, r.PerS)
	}
	if n, err := client.Exists(t.Context(), prefix+"inventory:seed-lock-product").Result(); err != nil || n != 0 {
		t.Errorf("the run left its stock key (%d, %v); want it deleted", n, err)
	}
}

func TestRunCeilingSellsExactlyTheQuantity(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.Redis(t)
	const buyers, attempts, quantity = 300, 1200, 200
	r, err := runCeiling(t.Context(), client, prefix, buyers, attempts, 32, quantity, 1)
	if err != nil {
		t.Fatalf("runCeiling: %v", err)
	}
	if r.Sold != quantity || r.Sold+r.Refused != attempts || r.Errors != 0 {
		t.Errorf("sold %d, refused %d, errors %d of %d attempts; want %d sold, the rest refused", r.Sold, r.Refused, r.Errors, attempts, quantity)
	}
	if r.PerS <= 0 || r.P50Ms > r.P99Ms {
		t.Errorf("%v/s, p50 %v ms, p99 %v ms; want a rate and ordered percentiles", r.PerS, r.P50Ms, r.P99Ms)
	}
}

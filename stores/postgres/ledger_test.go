package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

func ledgerHold(seq int64) flashsale.Hold {
	user := flashsale.NewUserID(int(seq) % flashsale.Buckets)
	return flashsale.Hold{OrderID: flashsale.NewOrderID(user), UserID: user, Quantity: 1, IdempotencyKey: "k", Seq: seq}
}

func TestLedgerRefusesStaleReservations(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 4, postgres.Options{})
	l := postgres.NewLedger(db)
	ctx := context.Background()
	pool := flashsale.SalePool(flashsale.NewSaleID(7))

	if err := l.Record(ctx, pool, 1, ledgerHold(1)); !errors.Is(err, flashsale.ErrStalePool) {
		t.Errorf("record before the pool has a generation: %v; want ErrStalePool", err)
	}
	gen, err := l.Fence(ctx, pool, 0)
	if err != nil || gen != 1 {
		t.Fatalf("first fence = %d, %v; want 1", gen, err)
	}
	first := ledgerHold(1)
	if err := l.Record(ctx, pool, 1, first); err != nil {
		t.Fatalf("record: %v", err)
	}
	tests := []struct {
		name string
		gen  int64
		h    flashsale.Hold
		want error
	}{
		{"the same order again", 1, first, nil},
		{"another order under a recorded number", 1, ledgerHold(1), flashsale.ErrStalePool},
		{"a later generation than the pool's", 2, ledgerHold(2), flashsale.ErrStalePool},
		{"a new number", 1, ledgerHold(3), nil},
	}
	for _, tt := range tests {
		if err := l.Record(ctx, pool, tt.gen, tt.h); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		}
	}
	// Fencing past generation 1 refuses what generation 1 reserves from now on.
	for _, f := range []struct{ seen, want int64 }{
		{0, 1}, // seen 0 starts nothing new
		{1, 2}, // past the generation seen
		{1, 2}, // already past it: another rebuild fenced first
	} {
		if gen, err := l.Fence(ctx, pool, f.seen); err != nil || gen != f.want {
			t.Errorf("fence past %d = %d, %v; want %d", f.seen, gen, err, f.want)
		}
	}
	if err := l.Record(ctx, pool, 1, ledgerHold(4)); !errors.Is(err, flashsale.ErrStalePool) {
		t.Errorf("record of the old generation after a fence: %v; want ErrStalePool", err)
	}
	if err := l.Record(ctx, pool, 2, ledgerHold(4)); err != nil {
		t.Errorf("record of the new generation: %v", err)
	}
	maxSeq, recent, err := l.Recorded(ctx, pool, time.Minute)
	if err != nil || maxSeq != 4 || len(recent) != 3 {
		t.Errorf("Recorded = %d, %d reservations, %v; want 4 and 3", maxSeq, len(recent), err)
	}
	for _, r := range recent {
		if r.Seq == 1 && (r.OrderID != first.OrderID || r.UserID != first.UserID || r.Quantity != 1 || r.IdempotencyKey != "k") {
			t.Errorf("recorded reservation 1 = %+v; want %+v", r, first)
		}
	}
}

// A fence waits for a record in flight (here, a transaction holding the generation row as a
// record statement does), and a record that comes after it is refused: no reservation of
// the old generation is recorded once the fence has returned.
func TestLedgerFenceWaitsForRecordsInFlight(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	l := postgres.NewLedger(db)
	ctx := context.Background()
	pool := flashsale.SalePool(flashsale.NewSaleID(3))
	if _, err := l.Fence(ctx, pool, 0); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool(0).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT generation FROM pool_generations WHERE pool = $1 FOR SHARE`, string(pool)); err != nil {
		t.Fatal(err)
	}
	fenced := make(chan int64, 1)
	go func() {
		gen, err := l.Fence(ctx, pool, 1)
		if err != nil {
			t.Errorf("fence: %v", err)
		}
		fenced <- gen
	}()
	select {
	case <-fenced:
		t.Fatal("the fence returned while a record held the generation row")
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if gen := <-fenced; gen != 2 {
		t.Errorf("generation after the fence = %d; want 2", gen)
	}
	if err := l.Record(ctx, pool, 1, ledgerHold(1)); !errors.Is(err, flashsale.ErrStalePool) {
		t.Errorf("record of generation 1 after the fence: %v; want ErrStalePool", err)
	}
}

// Concurrent records share statements; each still gets its own answer.
func TestLedgerConcurrentRecords(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	l := postgres.NewLedger(db)
	ctx := context.Background()
	pools := []flashsale.PoolKey{flashsale.SalePool(flashsale.NewSaleID(1)), flashsale.ProductPool(flashsale.NewProductID(900))}
	for _, p := range pools {
		if _, err := l.Fence(ctx, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	const n = 300
	holds := make([]flashsale.Hold, n)
	for i := range holds {
		holds[i] = ledgerHold(int64(i/2 + 1))
	}
	var wg sync.WaitGroup
	for round := range 2 { // the second round reuses every number for other orders
		for i := range n {
			wg.Go(func() {
				h := holds[i]
				if round == 1 {
					h = ledgerHold(h.Seq)
				}
				err := l.Record(ctx, pools[i%2], 1, h)
				if want := error(nil); round == 1 {
					if !errors.Is(err, flashsale.ErrStalePool) {
						t.Errorf("reused number %d of %s: %v; want ErrStalePool", h.Seq, pools[i%2], err)
					}
				} else if err != want {
					t.Errorf("record %d of %s: %v", h.Seq, pools[i%2], err)
				}
			})
		}
		wg.Wait()
	}
	for _, p := range pools {
		if maxSeq, recent, err := l.Recorded(ctx, p, time.Minute); err != nil || maxSeq != n/2 || len(recent) != n/2 {
			t.Errorf("Recorded(%s) = %d, %d, %v; want %d and %d", p, maxSeq, len(recent), err, n/2, n/2)
		}
	}
}

// Pruning the ledger keeps catching a stale copy: a number whose row was pruned is refused
// as a recorded one is, and a rebuild still numbers on from the pool's highest.
func TestLedgerRefusesNumbersPrunedAway(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	l := postgres.NewLedger(db)
	ctx := context.Background()
	pool := flashsale.SalePool(flashsale.NewSaleID(11))
	bucket, err := pool.Bucket()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fence(ctx, pool, 0); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		if err := l.Record(ctx, pool, 1, ledgerHold(seq)); err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
	}
	n, err := postgres.NewPruner(db).Prune(ctx, db.ShardOf(bucket), flashsale.PruneReservations, time.Now().Add(time.Hour), 100)
	if err != nil || n != 4 {
		t.Fatalf("prune = %d, %v; want the 4 reservations below the highest", n, err)
	}
	for _, tt := range []struct {
		name string
		h    flashsale.Hold
		want error
	}{
		{"another order under a pruned number", ledgerHold(2), flashsale.ErrStalePool},
		{"another order under the kept highest", ledgerHold(5), flashsale.ErrStalePool},
		{"a new number", ledgerHold(6), nil},
	} {
		if err := l.Record(ctx, pool, 1, tt.h); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		}
	}
	if maxSeq, _, err := l.Recorded(ctx, pool, time.Minute); err != nil || maxSeq != 6 {
		t.Errorf("Recorded = %d, %v; want the highest number 6", maxSeq, err)
	}
}

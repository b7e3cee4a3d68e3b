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

// Orders written with CreateOrderWhen commit only once their confirmation says yes: a
// refused one leaves neither its row nor its event, and orders of the same batch that were
// confirmed still commit.
func TestOrdersCommitOnlyOnceConfirmed(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{MaxConns: 4})
	ctx := context.Background()
	orders, outbox := postgres.NewOrderStore(db), postgres.NewOutbox(db)
	refusal := errors.New("refused by the ledger")

	const n = 40
	release := make(chan struct{})
	confirm := func(refuse bool) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-release: // held until every insert is in flight, so they share batches
			case <-ctx.Done():
				return ctx.Err()
			}
			if refuse {
				return refusal
			}
			return nil
		}
	}
	placed := make([]*flashsale.Order, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		user := newBuyer(t, db)
		placed[i] = &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(5),
			Quantity: 1, TotalCents: 100, IdempotencyKey: "k"}
		wg.Go(func() { errs[i] = orders.CreateOrderWhen(ctx, placed[i], confirm(i%3 == 0)) })
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()

	var kept int
	for i, o := range placed {
		_, findErr := orders.FindOrderByID(ctx, o.ID)
		switch {
		case i%3 == 0:
			if !errors.Is(errs[i], refusal) {
				t.Errorf("order %d: err = %v, want the confirmation's refusal", i, errs[i])
			}
			if flashsale.ErrorCode(findErr) != flashsale.ENOTFOUND {
				t.Errorf("refused order %d: find err = %v, want NOT_FOUND", i, findErr)
			}
		default:
			kept++
			if errs[i] != nil || findErr != nil {
				t.Errorf("confirmed order %d: create err = %v, find err = %v", i, errs[i], findErr)
			}
		}
	}
	if got, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || got != kept {
		t.Errorf("outbox = %d, %v; want %d (one event per committed order)", got, err, kept)
	}
}

// An order whose confirmation does not come before its deadline is not written.
func TestOrderNotConfirmedInTimeIsNotWritten(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	orders := postgres.NewOrderStore(db)
	user := newBuyer(t, db)
	o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(5),
		Quantity: 1, TotalCents: 100, IdempotencyKey: "k"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	never := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := orders.CreateOrderWhen(ctx, o, never); err == nil {
		t.Fatal("CreateOrderWhen with no confirmation succeeded")
	}
	if _, err := orders.FindOrderByID(context.Background(), o.ID); flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
		t.Errorf("find after the deadline: err = %v, want NOT_FOUND", err)
	}
}

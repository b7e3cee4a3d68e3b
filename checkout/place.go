package checkout

import (
	"context"
	"errors"
	"time"

	"github.com/flashsale/flashsale"
)

type termsFunc func(context.Context) (flashsale.PoolTerms, error)

// errStockUnavailable answers a buyer whose reservation Redis did not answer.
var errStockUnavailable = flashsale.Retryable(flashsale.EUNAVAILABLE, time.Second, "stock cannot be counted just now; try again")

// PlaceFlashSaleOrder sells units of a flash sale to the viewer. SALE_NOT_ACTIVE, SOLD_OUT,
// LIMIT_EXCEEDED, BAD_USER_INPUT, NOT_FOUND (sale). The same idempotency key from the same
// buyer returns the same order.
func (s *Service) PlaceFlashSaleOrder(ctx context.Context, v flashsale.Viewer, id flashsale.SaleID, quantity int, key string) (*flashsale.Order, error) {
	if err := flashsale.ValidateOrderRequest(quantity, key); err != nil {
		return nil, err
	}
	if s.soldOut.IsSoldOut(flashsale.SalePool(id)) {
		// Deliberately no lookup of the key here: after a sell-out the burst is answered
		// from memory, and a buyer retrying an order placed before it finds the order in
		// their orders list (README, "Known trade-offs").
		s.CountRefusedFromMemory(id)
		return nil, flashsale.ErrSoldOut
	}
	sale, err := s.Sale(ctx, id)
	if err != nil {
		return nil, err
	}
	total, err := flashsale.OrderTotal(sale.SalePriceCents, quantity)
	if err != nil {
		return nil, err
	}
	o := &flashsale.Order{
		ID: flashsale.NewOrderID(v.UserID), UserID: v.UserID, ProductID: sale.ProductID, SaleID: sale.ID,
		Quantity: quantity, TotalCents: total, IdempotencyKey: key,
	}
	return s.place(ctx, o, s.saleTermsFunc(sale.ID))
}

// PlaceOrder sells units of a product's regular stock with the same guarantees.
// SOLD_OUT, BAD_USER_INPUT, NOT_FOUND (product), SALE_NOT_ACTIVE (the product is retired).
func (s *Service) PlaceOrder(ctx context.Context, v flashsale.Viewer, id flashsale.ProductID, quantity int, key string) (*flashsale.Order, error) {
	if err := flashsale.ValidateOrderRequest(quantity, key); err != nil {
		return nil, err
	}
	p, err := s.products.FindProductByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.RetiredAt != nil {
		return nil, flashsale.ErrProductRetired(p.ID)
	}
	total, err := flashsale.OrderTotal(p.PriceCents, quantity)
	if err != nil {
		return nil, err
	}
	o := &flashsale.Order{
		ID: flashsale.NewOrderID(v.UserID), UserID: v.UserID, ProductID: p.ID,
		Quantity: quantity, TotalCents: total, IdempotencyKey: key,
	}
	return s.place(ctx, o, s.productTermsFunc(id))
}

func (s *Service) productTermsFunc(id flashsale.ProductID) termsFunc {
	return func(ctx context.Context) (flashsale.PoolTerms, error) {
		p, err := s.products.FindProductByID(ctx, id)
		if err != nil {
			return flashsale.PoolTerms{}, err
		}
		return productTerms(p), nil
	}
}

// RemembersASellOut reports, cheaply, whether RefusesFromMemory may say yes to anything: the
// API reads no request for it before some sale has sold out.
func (s *Service) RemembersASellOut() bool { return s.soldOut.Any() }

// RefusesFromMemory reports whether PlaceFlashSaleOrder would answer these arguments
// SOLD_OUT from this process's memory of the sale's sell-out, doing no I/O: the API answers
// such requests before running GraphQL. It makes the same checks, in the same order.
func (s *Service) RefusesFromMemory(id flashsale.SaleID, quantity int, key string) bool {
	return flashsale.ValidateOrderRequest(quantity, key) == nil && s.soldOut.IsSoldOut(flashsale.SalePool(id))
}

// CountRefusedFromMemory counts an attempt at the sale that was refused SOLD_OUT from memory,
// here or by the API's sold-out fast path after RefusesFromMemory said yes: it is an attempt
// like those the pool counts itself, and the sale's conversion rate divides by them all.
func (s *Service) CountRefusedFromMemory(id flashsale.SaleID) {
	if s.attempts != nil {
		s.attempts.Add(flashsale.SalePool(id))
	}
}

// place takes the units, then writes the order while the reservation is being recorded in
// the ledger, and commits the order only once the record has. From the moment units may be
// taken it runs on a context detached from the client's: a buyer who hangs up must not leave
// a reservation half done, so the insert or the release always runs to its end. Taking the
// units and writing the order are each bounded by WriteTimeout: a reservation that waited
// for a rebuild must not leave its order too little time to be written, or its units would
// stay held until reconciliation.
func (s *Service) place(ctx context.Context, o *flashsale.Order, terms termsFunc) (*flashsale.Order, error) {
	pool := o.Pool()
	detached := context.WithoutCancel(ctx)
	hold := flashsale.Hold{OrderID: o.ID, UserID: o.UserID, Quantity: o.Quantity, IdempotencyKey: o.IdempotencyKey, At: s.now()}
	for attempt := 0; ; attempt++ {
		o, stale, err := s.placeOnce(detached, o, hold, terms)
		if stale == 0 || attempt > 0 {
			return o, err
		}
		// Our units came from a copy of the pool that is not the live one, and our order
		// was not written; the rebuild replaces that copy whole, our hold with it, and the
		// reservation is made again in the rebuilt pool.
		s.log.WarnContext(ctx, "reservation from a stale pool", "pool", string(pool), "generation", stale)
		if err := s.rebuild(detached, pool, stale, terms, RepairStalePool); err != nil {
			return nil, err
		}
	}
}

// placeOnce is one attempt of place. When the ledger refused the reservation as coming from
// a stale pool it returns that pool's generation, and nothing was written.
func (s *Service) placeOnce(detached context.Context, o *flashsale.Order, hold flashsale.Hold, terms termsFunc) (*flashsale.Order, int64, error) {
	pool := o.Pool()
	ctx, cancel := context.WithTimeout(detached, s.cfg.WriteTimeout)
	defer cancel()
	started := time.Now()
	res, err := s.reserve(ctx, pool, hold, terms)
	reserved := time.Now()
	if err != nil {
		if errors.Is(err, flashsale.ErrSoldOut) { // not "only 2 left": others may still buy
			s.soldOut.Mark(pool)
		}
		return nil, 0, err
	}
	if res.Duplicate {
		o, err := s.awaitOrder(ctx, res.OrderID)
		return o, 0, err
	}

	ctx, cancelWrite := context.WithTimeout(detached, s.cfg.WriteTimeout)
	defer cancelWrite()
	hold.Seq = res.Version.Seq
	rec := s.record(ctx, pool, res.Version.Generation, hold)
	err = s.orders.CreateOrderWhen(ctx, o, rec.wait)
	switch {
	case err == nil:
	case errors.Is(err, flashsale.ErrStalePool):
		return nil, res.Version.Generation, err
	case rec.refused(err):
		// Not recorded (or not known to be): the order was not written, so the units go
		// back. A record that committed unseen only makes a rebuild count a hold that
		// reconciliation returns after OrphanGrace.
		s.abandon(ctx, pool, o.ID)
		return nil, 0, err
	case flashsale.ErrorCode(err) == flashsale.ECONFLICT:
		// PostgreSQL knew the key although Redis did not (Redis was rebuilt after a loss):
		// ours was not written, so our units (and our claim on the key) go back, and the
		// earlier order is the answer.
		s.abandon(ctx, pool, o.ID)
		o, err := s.orders.FindOrderByIdempotencyKey(ctx, o.UserID, o.IdempotencyKey)
		return o, 0, err
	default:
		s.undo(ctx, pool, o, err)
		return nil, 0, err
	}
	if s.observe != nil {
		s.observe(StepReserve, reserved.Sub(started))
		s.observe(StepRecord, rec.took)
		s.observe(StepWrite, time.Since(reserved))
	}
	s.publish(ctx, pool, res.Remaining)
	s.announce(ctx, o)
	return o, 0, nil
}

// recording is a reservation being recorded in the ledger while its order is inserted.
type recording struct {
	done chan struct{}
	err  error
	took time.Duration
}

// record starts recording the reservation in the ledger.
func (s *Service) record(ctx context.Context, pool flashsale.PoolKey, gen int64, h flashsale.Hold) *recording {
	r := &recording{done: make(chan struct{})}
	go func() {
		started := time.Now()
		r.err = s.ledger.Record(ctx, pool, gen, h)
		r.took = time.Since(started)
		close(r.done)
	}()
	return r
}

// wait returns the record's outcome, or ctx's error if it ends first.
func (r *recording) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refused reports whether err is the record's own failure, which CreateOrderWhen returned.
func (r *recording) refused(err error) bool {
	select {
	case <-r.done:
		return r.err != nil && errors.Is(err, r.err)
	default:
		return false
	}
}

// reserve takes the units. A pool Redis lost is rebuilt first; the buyer waits at most
// RebuildWait for the rebuild, and is answered UNAVAILABLE if it takes longer.
func (s *Service) reserve(ctx context.Context, pool flashsale.PoolKey, h flashsale.Hold, terms termsFunc) (flashsale.Reservation, error) {
	res, err := s.inventory.Reserve(ctx, pool, h)
	if errors.Is(err, flashsale.ErrPoolNotLoaded) {
		if err := s.rebuild(ctx, pool, 0, terms, RepairLostPool); err != nil {
			return res, err
		}
		res, err = s.inventory.Reserve(ctx, pool, h)
	}
	if flashsale.ErrorCode(err) == flashsale.EINTERNAL {
		// Redis did not answer (restarting, failing over): no order is written, and the
		// buyer may try again; a hold the script took unseen is an orphan that
		// reconciliation returns.
		s.log.WarnContext(ctx, "reserve", "pool", string(pool), "err", err)
		return res, errStockUnavailable
	}
	return res, err
}

// undo returns the units of an order whose insert failed, but only once it is sure the row
// does not exist: a commit can succeed on the server after the client gave up waiting. When
// it cannot tell, it leaves the hold to reconciliation, which checks again after OrphanGrace.
func (s *Service) undo(ctx context.Context, pool flashsale.PoolKey, o *flashsale.Order, cause error) {
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer cancel()
	_, err := s.orders.FindOrderByID(checkCtx, o.ID)
	switch flashsale.ErrorCode(err) {
	case flashsale.ENOTFOUND:
		s.abandon(checkCtx, pool, o.ID)
	case "":
		s.log.WarnContext(ctx, "order insert reported an error but committed", "order", o.ID.String(), "err", cause)
	default:
		s.log.WarnContext(ctx, "order insert failed; leaving its hold to reconciliation",
			"order", o.ID.String(), "err", cause, "check_err", err)
	}
}

// release gives an order's units back and announces the new count; it reports whether it
// released anything.
func (s *Service) release(ctx context.Context, pool flashsale.PoolKey, id flashsale.OrderID) bool {
	return s.giveBack(ctx, pool, id, s.inventory.Release)
}

// abandon gives back the units of an order that was never written, and its key with them.
func (s *Service) abandon(ctx context.Context, pool flashsale.PoolKey, id flashsale.OrderID) bool {
	return s.giveBack(ctx, pool, id, s.inventory.Abandon)
}

func (s *Service) giveBack(ctx context.Context, pool flashsale.PoolKey, id flashsale.OrderID,
	how func(context.Context, flashsale.PoolKey, flashsale.OrderID) (bool, int, error)) bool {
	released, remaining, err := how(ctx, pool, id)
	if err != nil {
		s.log.WarnContext(ctx, "release hold; reconciliation will retry", "pool", string(pool), "order", id.String(), "err", err)
		return false
	}
	if released {
		s.publish(ctx, pool, remaining)
	}
	return released
}

// awaitOrder returns the order a duplicate key points at. Its first request may still be
// writing it, so it waits for the row for up to the write timeout.
func (s *Service) awaitOrder(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error) {
	delay := 5 * time.Millisecond
	for {
		o, err := s.orders.FindOrderByID(ctx, id)
		if flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
			return o, err
		}
		select {
		case <-ctx.Done():
			return nil, flashsale.Errorf(flashsale.ECONFLICT, "an order with this idempotency key is still being placed; try again")
		case <-time.After(delay):
			delay = min(2*delay, 100*time.Millisecond)
		}
	}
}

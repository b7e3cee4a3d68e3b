package flashsale

import (
	"context"
	"io"
	"time"
)

// SaleStatus is where a flash sale stands; it follows the clock and the stock.
type SaleStatus string

// The statuses of a flash sale.
const (
	SaleScheduled SaleStatus = "SCHEDULED"
	SaleActive    SaleStatus = "ACTIVE"
	SaleSoldOut   SaleStatus = "SOLD_OUT"
	SaleEnded     SaleStatus = "ENDED"
)

// MarshalGQL writes the status as a GraphQL enum.
func (s SaleStatus) MarshalGQL(w io.Writer) { enumMarshal(w, string(s)) }

// UnmarshalGQL reads a GraphQL enum.
func (s *SaleStatus) UnmarshalGQL(v any) error {
	str, err := enumUnmarshal(v, func(s string) bool {
		switch SaleStatus(s) {
		case SaleScheduled, SaleActive, SaleSoldOut, SaleEnded:
			return true
		}
		return false
	}, "flash sale status")
	*s = SaleStatus(str)
	return err
}

// FlashSale sells Quantity units of a product at SalePriceCents between StartsAt and EndsAt,
// at most PerUserLimit to each buyer.
type FlashSale struct {
	ID             SaleID
	ProductID      ProductID
	SalePriceCents int
	Quantity       int
	PerUserLimit   int
	StartsAt       time.Time
	EndsAt         time.Time
	CreatedAt      time.Time
	// CancelledAt is when staff cancelled the sale (CancelSale); nil for a sale never
	// cancelled. A cancelled sale sells nothing more and shows as ENDED.
	CancelledAt *time.Time
}

// StatusAt is the sale's status at a moment, given the units it has left.
func (s *FlashSale) StatusAt(now time.Time, remaining int) SaleStatus {
	switch {
	case s.CancelledAt != nil:
		return SaleEnded
	case now.Before(s.StartsAt):
		return SaleScheduled
	case !now.Before(s.EndsAt):
		return SaleEnded
	case remaining <= 0:
		return SaleSoldOut
	}
	return SaleActive
}

// Validate checks a new sale. BAD_USER_INPUT.
func (s *FlashSale) Validate(now time.Time) error {
	switch {
	case s.SalePriceCents < 0 || s.SalePriceCents > MaxPriceCents:
		return Errorf(EINVALID, "salePriceCents must be between 0 and %d", MaxPriceCents)
	case s.Quantity <= 0 || s.Quantity > MaxStock:
		return Errorf(EINVALID, "quantity must be between 1 and %d", MaxStock)
	case s.PerUserLimit <= 0 || s.PerUserLimit > s.Quantity:
		return Errorf(EINVALID, "perUserLimit must be between 1 and the quantity")
	case !s.EndsAt.After(s.StartsAt):
		return Errorf(EINVALID, "endsAt must be after startsAt")
	case !s.EndsAt.After(now):
		return Errorf(EINVALID, "endsAt must be in the future")
	case s.EndsAt.Sub(s.StartsAt) > 31*24*time.Hour:
		return Errorf(EINVALID, "a flash sale lasts at most 31 days")
	}
	return nil
}

// SaleStore keeps flash sales on the shards of their ids.
type SaleStore interface {
	// CreateSale inserts s with a fresh id in its product's bucket. The sale's quantity is an
	// allocation of its own, apart from the product's regular stock. NOT_FOUND (product).
	CreateSale(ctx context.Context, s *FlashSale) error
	// FindSaleByID returns NOT_FOUND if there is no such sale.
	FindSaleByID(ctx context.Context, id SaleID) (*FlashSale, error)
	// FindSaleSettled reads the sale from its shard, never from a cache, once any change of
	// it in flight (UpdateSale) has committed: a pool rebuilt from what it returns has the
	// terms the sale's row will keep. NOT_FOUND.
	FindSaleSettled(ctx context.Context, id SaleID) (*FlashSale, error)
	// FindSalesByIDs returns one sale or error per id, in the order of ids.
	FindSalesByIDs(ctx context.Context, ids []SaleID) ([]*FlashSale, []error)
	// FindCurrentSalesOfProducts returns, for each product id, the product's sale whose window
	// holds at (started, not ended; the latest started if several), or nil, in the order of
	// ids, with one statement per shard touched.
	FindCurrentSalesOfProducts(ctx context.Context, ids []ProductID, at time.Time) ([]*FlashSale, []error)
	// ListSales returns every sale whose window ends after `since`, across shards, in id
	// order. A failing shard fails the call.
	ListSales(ctx context.Context, since time.Time) ([]*FlashSale, error)
	// PageSales returns up to first sales with ids above after (0: from the first), across
	// shards, in id order, and whether more follow. A status, if given, is judged by the
	// clock alone at now: SCHEDULED selects the sales that start after now, ENDED those that
	// ended by now, and ACTIVE and SOLD_OUT alike the sales running at now, which only their
	// stock tells apart. A failing shard fails the call.
	PageSales(ctx context.Context, first int, after SaleID, status *SaleStatus, now time.Time) ([]*FlashSale, bool, error)
	// UpdateSale locks the sale's row, calls change with it, writes what change left, then
	// calls follow (if not nil) with the new sale before committing: an error from change or
	// follow rolls the update back and is returned. NOT_FOUND, and change's errors.
	UpdateSale(ctx context.Context, id SaleID, change, follow func(context.Context, *FlashSale) error) (*FlashSale, error)
}

// StockUpdate is one reading of a live stock counter. On a flash sale's feed it also names
// the sale and its status at that moment; on a product's feed it names the product.
type StockUpdate struct {
	Remaining int
	At        time.Time
	// Sale is the sale of the feed, nil on a product's; Status is its status at At.
	Sale   *FlashSale
	Status SaleStatus
	// ProductID is the product of a product's feed, 0 on a sale's.
	ProductID ProductID
}

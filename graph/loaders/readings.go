package loaders

import (
	"github.com/flashsale/flashsale"
)

// saleReading is a sale's live count and status as one reading of its counter found them.
type saleReading struct {
	remaining int
	status    flashsale.SaleStatus
}

// NoteStockUpdate keeps a sale's reading of a stock update for the rest of the response, so
// that the fields of the sale it names (StockUpdate.flashSale { remaining status }) answer
// from it: they agree with the update, and a thousand subscribers' updates do not each read
// the counter again.
func (l *Loaders) NoteStockUpdate(u *flashsale.StockUpdate) {
	if u.Sale != nil {
		l.readings.Store(u.Sale.ID, saleReading{remaining: u.Remaining, status: u.Status})
	}
}

// SaleReading returns the reading of a sale noted in this response, if any.
func (l *Loaders) SaleReading(id flashsale.SaleID) (remaining int, status flashsale.SaleStatus, ok bool) {
	v, ok := l.readings.Load(id)
	if !ok {
		return 0, "", false
	}
	r := v.(saleReading)
	return r.remaining, r.status, true
}

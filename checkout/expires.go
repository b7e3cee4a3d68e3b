package checkout

import (
	"time"

	"github.com/flashsale/flashsale"
)

// ExpiresAt is when a PENDING order expires unless paid first (ExpireStale takes orders
// created more than the reservation time ago), or nil for an order in any other status.
func (s *Service) ExpiresAt(o *flashsale.Order) *time.Time {
	if o.Status != flashsale.OrderPending {
		return nil
	}
	at := o.CreatedAt.Add(s.cfg.ReservationTTL)
	return &at
}

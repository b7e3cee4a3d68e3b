package flashsale_test

import (
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

func TestSaleChangeApply(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	scheduled := func() *flashsale.FlashSale {
		return &flashsale.FlashSale{SalePriceCents: 100, Quantity: 10, PerUserLimit: 2,
			StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}
	}
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	n := func(v int) *int { return &v }
	cancelledAt := now.Add(-time.Minute)
	tests := []struct {
		name   string
		sale   func() *flashsale.FlashSale
		change flashsale.SaleChange
		want   string // error code, "" for none
	}{
		{"price", scheduled, flashsale.SaleChange{SalePriceCents: n(50)}, ""},
		{"window", scheduled, flashsale.SaleChange{StartsAt: at(time.Minute), EndsAt: at(time.Hour)}, ""},
		{"nothing", scheduled, flashsale.SaleChange{}, ""},
		{"zero quantity", scheduled, flashsale.SaleChange{Quantity: n(0)}, flashsale.EINVALID},
		{"limit above quantity", scheduled, flashsale.SaleChange{Quantity: n(1)}, flashsale.EINVALID},
		{"start too soon", scheduled, flashsale.SaleChange{StartsAt: at(time.Second)}, flashsale.EINVALID},
		{"start in the past", scheduled, flashsale.SaleChange{StartsAt: at(-time.Hour)}, flashsale.EINVALID},
		{"end before start", scheduled, flashsale.SaleChange{EndsAt: at(30 * time.Minute)}, flashsale.EINVALID},
		{"started", func() *flashsale.FlashSale {
			s := scheduled()
			s.StartsAt = now.Add(-time.Minute)
			return s
		}, flashsale.SaleChange{Quantity: n(5)}, flashsale.ECONFLICT},
		{"starts within the lead", func() *flashsale.FlashSale {
			s := scheduled()
			s.StartsAt = now.Add(flashsale.SaleChangeLead - time.Second)
			return s
		}, flashsale.SaleChange{Quantity: n(5)}, flashsale.ECONFLICT},
		{"cancelled", func() *flashsale.FlashSale {
			s := scheduled()
			s.CancelledAt = &cancelledAt
			return s
		}, flashsale.SaleChange{Quantity: n(5)}, flashsale.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.change.Apply(tt.sale(), now)
			if got := flashsale.ErrorCode(err); got != tt.want {
				t.Errorf("Apply = %v; got code %q, want %q", err, got, tt.want)
			}
		})
	}
}

func TestSaleEndAndCancel(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	running := flashsale.FlashSale{Quantity: 1, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	scheduled := flashsale.FlashSale{Quantity: 1, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}

	s := running
	if err := s.EndEarly(now); err != nil || !s.EndsAt.Equal(now) || s.StatusAt(now, 1) != flashsale.SaleEnded {
		t.Errorf("ending a running sale: %v, ends %v, status %s; want ended now", err, s.EndsAt, s.StatusAt(now, 1))
	}
	if err := s.EndEarly(now); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("ending an ended sale: %v; want CONFLICT", err)
	}
	s = scheduled
	if err := s.EndEarly(now); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("ending a scheduled sale: %v; want CONFLICT", err)
	}

	s = running
	if err := s.Cancel(now); err != nil || !s.EndsAt.Equal(now) || !s.ClosesAt().Equal(now) {
		t.Errorf("cancelling a running sale: %v, ends %v, closes %v; want both now", err, s.EndsAt, s.ClosesAt())
	}
	if err := s.Cancel(now); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("cancelling twice: %v; want CONFLICT", err)
	}
	s = scheduled
	if err := s.Cancel(now); err != nil || !s.EndsAt.Equal(scheduled.EndsAt) || !s.ClosesAt().Before(s.StartsAt) {
		t.Errorf("cancelling a scheduled sale: %v, ends %v, closes %v; want its times kept, closed before it opens", err, s.EndsAt, s.ClosesAt())
	}
	if got := s.StatusAt(now, 1); got != flashsale.SaleEnded {
		t.Errorf("a cancelled scheduled sale is %s; want ENDED", got)
	}
}

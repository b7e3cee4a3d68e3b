package flashsale

import (
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SaleChangeLead is how long before its start a scheduled sale stops accepting changes, and
// how far ahead a changed start must be. Replicas keep a sale's terms in memory for up to a
// second (checkout's sale cache); the lead keeps a change from meeting a buyer on a replica
// that has not seen it yet.
const SaleChangeLead = 5 * time.Second

// SaleChange holds the terms of a scheduled sale to change; nil leaves a term as it is.
type SaleChange struct {
	SalePriceCents *int
	Quantity       *int
	PerUserLimit   *int
	StartsAt       *time.Time
	EndsAt         *time.Time
}

// Apply validates the change and applies it to s. CONFLICT if the sale is cancelled, has
// started or starts within SaleChangeLead; BAD_USER_INPUT (naming the field) if the new terms
// are not those of a valid sale or the new start is less than SaleChangeLead away.
func (c SaleChange) Apply(s *FlashSale, now time.Time) error {
	switch {
	case s.CancelledAt != nil:
		return Errorf(ECONFLICT, "the flash sale is cancelled")
	case !now.Before(s.StartsAt):
		return Errorf(ECONFLICT, "the flash sale has started; only a scheduled sale can be changed (end or cancel it instead)")
	case s.StartsAt.Sub(now) < SaleChangeLead:
		return Errorf(ECONFLICT, "the flash sale starts in less than %s and can no longer be changed", SaleChangeLead)
	}
	if c.SalePriceCents != nil {
		s.SalePriceCents = *c.SalePriceCents
	}
	if c.Quantity != nil {
		s.Quantity = *c.Quantity
	}
	if c.PerUserLimit != nil {
		s.PerUserLimit = *c.PerUserLimit
	}
	if c.StartsAt != nil {
		if c.StartsAt.Sub(now) < SaleChangeLead {
			return Errorf(EINVALID, "startsAt must be at least %s from now", SaleChangeLead)
		}
		s.StartsAt = *c.StartsAt
	}
	if c.EndsAt != nil {
		s.EndsAt = *c.EndsAt
	}
	return s.Validate(now)
}

// EndEarly ends a running sale now. CONFLICT if it has not started (change or cancel it
// instead), has ended or was cancelled.
func (s *FlashSale) EndEarly(now time.Time) error {
	switch {
	case s.CancelledAt != nil:
		return Errorf(ECONFLICT, "the flash sale is cancelled")
	case now.Before(s.StartsAt):
		return Errorf(ECONFLICT, "the flash sale has not started; change or cancel it instead")
	case !now.Before(s.EndsAt):
		return Errorf(ECONFLICT, "the flash sale has ended")
	}
	s.EndsAt = now
	return nil
}

// Cancel cancels the sale now: a running sale ends at once, a scheduled one never starts.
// CONFLICT if it was cancelled before.
func (s *FlashSale) Cancel(now time.Time) error {
	if s.CancelledAt != nil {
		return Errorf(ECONFLICT, "the flash sale is already cancelled")
	}
	s.CancelledAt = &now
	if !now.Before(s.StartsAt) && now.Before(s.EndsAt) {
		s.EndsAt = now
	}
	return nil
}

// ClosesAt is when the sale stops selling: its end, or its cancellation if that came first.
// A sale cancelled before it started closes before it opens, so it never sells.
func (s *FlashSale) ClosesAt() time.Time {
	if s.CancelledAt != nil && s.CancelledAt.Before(s.EndsAt) {
		return *s.CancelledAt
	}
	return s.EndsAt
}

// ErrProductRetired answers an order for a retired product.
func ErrProductRetired(id ProductID) error {
	return Errorf(ESALENOTACTIVE, "product %s is retired and no longer sold", id)
}

// MaxUserSearchLen bounds the prefix of a search of users.
const MaxUserSearchLen = MaxEmailLen

// UserSearch returns the prefix a search of users matches emails and names against: trimmed,
// lower-cased and in NFC, as emails are stored; names are compared lower-cased. BAD_USER_INPUT
// if it is too long or holds control characters.
func UserSearch(prefix string) (string, error) {
	if !utf8.ValidString(prefix) {
		return "", Errorf(EINVALID, "search must be valid UTF-8")
	}
	prefix = norm.NFC.String(strings.ToLower(strings.TrimSpace(prefix)))
	if err := CheckText("search", prefix); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(prefix) > MaxUserSearchLen {
		return "", Errorf(EINVALID, "search is longer than %d characters", MaxUserSearchLen)
	}
	return prefix, nil
}

package flashsale

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Product is something the shop sells. Stock is the count of units for regular orders; units
// promised to a flash sale are taken out of it when the sale is created.
type Product struct {
	ID          ProductID
	Name        string
	Description string
	PriceCents  int
	Stock       int
	// ImageURL is an absolute http(s) URL of the product's picture, or empty.
	ImageURL string
	// Currency is the ISO 4217 code of every amount of the product and its sales.
	Currency  string
	CreatedAt time.Time
	UpdatedAt time.Time
	// RetiredAt is when staff retired the product: it is no longer sold nor listed in the
	// catalog by default, and its orders stay as they are. Nil for a product on sale.
	RetiredAt *time.Time
}

// Catalog limits.
const (
	MaxProductNameLen = 200
	MaxDescriptionLen = 10_000
	MaxPriceCents     = 1_000_000_000 // ten million in the shop's currency
	MaxStock          = 100_000_000
	DefaultPageSize   = 20
	MaxPageSize       = 100
	MaxImageURLLen    = 2048
	DefaultCurrency   = "USD"
)

// ProductUpdate holds the fields to change; nil leaves a field as it is.
type ProductUpdate struct {
	Name        *string
	Description *string
	PriceCents  *int
	Stock       *int
	ImageURL    *string
	Currency    *string
	// Retire retires the product (RetireProduct); a product retired before keeps its time.
	Retire bool
}

// Apply validates the update and applies it to p. BAD_USER_INPUT.
func (u ProductUpdate) Apply(p *Product) error {
	if u.Name != nil {
		p.Name = *u.Name
	}
	if u.Description != nil {
		p.Description = *u.Description
	}
	if u.PriceCents != nil {
		p.PriceCents = *u.PriceCents
	}
	if u.Stock != nil {
		p.Stock = *u.Stock
	}
	if u.ImageURL != nil {
		p.ImageURL = *u.ImageURL
	}
	if u.Currency != nil {
		p.Currency = *u.Currency
	}
	return p.Validate()
}

// Validate trims the name, the image URL and the currency (which it upper-cases, and sets to
// DefaultCurrency if empty), and checks a product's fields. BAD_USER_INPUT, naming the field.
func (p *Product) Validate() error {
	p.Name = strings.TrimSpace(p.Name)
	p.ImageURL = strings.TrimSpace(p.ImageURL)
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	if p.Currency == "" {
		p.Currency = DefaultCurrency
	}
	if err := checkImageURL(p.ImageURL); err != nil {
		return err
	}
	if !isCurrencyCode(p.Currency) {
		return Errorf(EINVALID, "currency must be an ISO 4217 code of three letters, such as USD")
	}
	if err := CheckText("name", p.Name); err != nil {
		return err
	}
	if err := CheckLongText("description", p.Description); err != nil {
		return err
	}
	switch {
	case p.Name == "":
		return Errorf(EINVALID, "name is required")
	case utf8.RuneCountInString(p.Name) > MaxProductNameLen:
		return Errorf(EINVALID, "name is longer than %d characters", MaxProductNameLen)
	case utf8.RuneCountInString(p.Description) > MaxDescriptionLen:
		return Errorf(EINVALID, "description is longer than %d characters", MaxDescriptionLen)
	case p.PriceCents < 0:
		return Errorf(EINVALID, "priceCents must not be negative")
	case p.PriceCents > MaxPriceCents:
		return Errorf(EINVALID, "priceCents must be at most %d", MaxPriceCents)
	case p.Stock < 0:
		return Errorf(EINVALID, "stock must not be negative")
	case p.Stock > MaxStock:
		return Errorf(EINVALID, "stock must be at most %d", MaxStock)
	}
	return nil
}

// checkImageURL accepts an empty URL or an absolute http or https URL with a host: pages put
// it in an <img src>, so nothing else (javascript:, data:) may get there.
func checkImageURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxImageURLLen {
		return Errorf(EINVALID, "imageUrl is longer than %d bytes", MaxImageURLLen)
	}
	if err := CheckText("imageUrl", s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return Errorf(EINVALID, "imageUrl must be an absolute http or https URL")
	}
	return nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// PageSize checks a connection's `first` argument. BAD_USER_INPUT.
func PageSize(first *int) (int, error) {
	if first == nil {
		return DefaultPageSize, nil
	}
	if *first < 0 || *first > MaxPageSize {
		return 0, Errorf(EINVALID, "first must be between 0 and %d", MaxPageSize)
	}
	return *first, nil
}

// ProductStore keeps products on the shards of their ids.
type ProductStore interface {
	// CreateProduct inserts p with a fresh id. BAD_USER_INPUT.
	CreateProduct(ctx context.Context, p *Product) error
	// UpdateProduct applies u under a row lock, writes the row, then calls follow (if not
	// nil) with the new product before committing: an error from follow rolls the update
	// back and is returned. It returns the new product. NOT_FOUND, BAD_USER_INPUT.
	UpdateProduct(ctx context.Context, id ProductID, u ProductUpdate, follow func(context.Context, *Product) error) (*Product, error)
	// FindProductByID returns NOT_FOUND if there is no such product.
	FindProductByID(ctx context.Context, id ProductID) (*Product, error)
	// LockProduct reads the product under a shared row lock, which waits for an update in
	// flight to commit or roll back, and calls fn while no update can start. NOT_FOUND.
	LockProduct(ctx context.Context, id ProductID, fn func(context.Context, *Product) error) error
	// FindProductsByIDs returns one product or error per id, in the order of ids, with one
	// statement per shard touched; a missing id gets NOT_FOUND.
	FindProductsByIDs(ctx context.Context, ids []ProductID) ([]*Product, []error)
	// ListProducts returns up to first products with ids after `after` (0: from the start)
	// in id order, merged across shards, and whether more follow. It fails, naming the
	// shard, if any shard fails: a page is never silently partial.
	ListProducts(ctx context.Context, first int, after ProductID) ([]*Product, bool, error)
	// ListCatalog is ListProducts without the retired products, unless includeRetired.
	ListCatalog(ctx context.Context, first int, after ProductID, includeRetired bool) ([]*Product, bool, error)
}

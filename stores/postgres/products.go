package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// ProductStore implements flashsale.ProductStore.
type ProductStore struct{ db *DB }

// NewProductStore returns a store over db.
func NewProductStore(db *DB) *ProductStore { return &ProductStore{db: db} }

var _ flashsale.ProductStore = (*ProductStore)(nil)

const productColumns = `id, name, description, price_cents, stock, image_url, currency, created_at, updated_at, retired_at`

func scanProduct(row pgx.Row) (*flashsale.Product, error) {
	var p flashsale.Product
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.PriceCents, &p.Stock, &p.ImageURL, &p.Currency, &p.CreatedAt, &p.UpdatedAt, &p.RetiredAt)
	return &p, err
}

// CreateProduct inserts p in a random bucket.
func (s *ProductStore) CreateProduct(ctx context.Context, p *flashsale.Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	bucket := flashsale.RandomBucket()
	p.ID = flashsale.NewProductID(bucket)
	err := s.db.poolFor(bucket).QueryRow(ctx,
		`INSERT INTO products (id, bucket, name, description, price_cents, stock, image_url, currency)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		 RETURNING created_at, updated_at`,
		p.ID, bucket, p.Name, p.Description, p.PriceCents, p.Stock, p.ImageURL, p.Currency).Scan(&p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert product: %w", err)
	}
	return nil
}

// UpdateProduct locks the row, applies u, writes it back and calls follow, in one
// transaction.
func (s *ProductStore) UpdateProduct(ctx context.Context, id flashsale.ProductID, u flashsale.ProductUpdate, follow func(context.Context, *flashsale.Product) error) (*flashsale.Product, error) {
	var p *flashsale.Product
	err := pgx.BeginFunc(ctx, s.db.poolFor(id.Bucket()), func(tx pgx.Tx) error {
		var err error
		p, err = scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return flashsale.Errorf(flashsale.ENOTFOUND, "product not found")
		} else if err != nil {
			return err
		}
		if err := u.Apply(p); err != nil {
			return err
		}
		if u.Retire {
			if err := checkRetirable(ctx, tx, id); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx,
			`UPDATE products SET name = $2, description = $3, price_cents = $4, stock = $5, image_url = $6,
			   currency = $7, updated_at = now(),
			   retired_at = CASE WHEN $8 THEN coalesce(retired_at, now()) ELSE retired_at END
			 WHERE id = $1 RETURNING updated_at, retired_at`,
			id, p.Name, p.Description, p.PriceCents, p.Stock, p.ImageURL, p.Currency, u.Retire).Scan(&p.UpdatedAt, &p.RetiredAt); err != nil {
			return err
		}
		if follow != nil {
			return follow(ctx, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update product %d: %w", id, err)
	}
	return p, nil
}

// LockProduct reads the product FOR SHARE and calls fn in the same transaction.
func (s *ProductStore) LockProduct(ctx context.Context, id flashsale.ProductID, fn func(context.Context, *flashsale.Product) error) error {
	err := pgx.BeginFunc(ctx, s.db.poolFor(id.Bucket()), func(tx pgx.Tx) error {
		p, err := scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1 FOR SHARE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return flashsale.Errorf(flashsale.ENOTFOUND, "product not found")
		} else if err != nil {
			return err
		}
		return fn(ctx, p)
	})
	if err != nil {
		return fmt.Errorf("lock product %d: %w", id, err)
	}
	return nil
}

// FindProductByID reads the one shard that holds the id's bucket.
func (s *ProductStore) FindProductByID(ctx context.Context, id flashsale.ProductID) (*flashsale.Product, error) {
	p, err := scanProduct(s.db.poolFor(id.Bucket()).QueryRow(ctx,
		`SELECT `+productColumns+` FROM products WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "product not found")
	} else if err != nil {
		return nil, fmt.Errorf("find product %d: %w", id, err)
	}
	return p, nil
}

// FindProductsByIDs sends one statement per shard touched.
func (s *ProductStore) FindProductsByIDs(ctx context.Context, ids []flashsale.ProductID) ([]*flashsale.Product, []error) {
	return findByIDs(ctx, s.db, ids, flashsale.ProductID.Bucket,
		`SELECT `+productColumns+` FROM products WHERE id = ANY($1)`, scanProduct,
		func(p *flashsale.Product) flashsale.ProductID { return p.ID }, "product")
}

// ListProducts asks every shard for its first first+1 products after the cursor and merges
// them by id; ids grow with time, so the order is creation order and stable across pages.
func (s *ProductStore) ListProducts(ctx context.Context, first int, after flashsale.ProductID) ([]*flashsale.Product, bool, error) {
	pages, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.Product, error) {
		rows, err := s.db.pools[shard].Query(ctx,
			`SELECT `+productColumns+` FROM products WHERE id > $1 ORDER BY id LIMIT $2`, after, first+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Product, error) { return scanProduct(r) })
	})
	if err != nil {
		return nil, false, fmt.Errorf("list products: %w", err)
	}
	all := slices.Concat(pages...)
	slices.SortFunc(all, func(a, b *flashsale.Product) int { return cmp.Compare(a.ID, b.ID) })
	if len(all) > first {
		return all[:first], true, nil
	}
	return all, false, nil
}

package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale"
)

// SaleStore implements flashsale.SaleStore.
type SaleStore struct{ db *DB }

// NewSaleStore returns a store over db.
func NewSaleStore(db *DB) *SaleStore { return &SaleStore{db: db} }

var _ flashsale.SaleStore = (*SaleStore)(nil)

const saleColumns = `id, product_id, sale_price_cents, quantity, per_user_limit, starts_at, ends_at, created_at, cancelled_at`

func scanSale(row pgx.Row) (*flashsale.FlashSale, error) {
	var s flashsale.FlashSale
	err := row.Scan(&s.ID, &s.ProductID, &s.SalePriceCents, &s.Quantity, &s.PerUserLimit, &s.StartsAt, &s.EndsAt, &s.CreatedAt, &s.CancelledAt)
	return &s, err
}

// CreateSale puts the sale in its product's bucket, so the foreign key to the product holds
// on one shard. The product is read FOR SHARE: a product being retired (which locks it and
// then looks for its sales) is waited for, and a retired product gets no sale. CONFLICT
// (retired), NOT_FOUND (product).
func (s *SaleStore) CreateSale(ctx context.Context, sale *flashsale.FlashSale) error {
	bucket := sale.ProductID.Bucket()
	sale.ID = flashsale.NewSaleID(bucket)
	err := s.db.poolFor(bucket).QueryRow(ctx,
		`INSERT INTO flash_sales (id, bucket, product_id, sale_price_cents, quantity, per_user_limit, starts_at, ends_at)
		 SELECT $1, $2, id, $4, $5, $6, $7, $8 FROM products WHERE id = $3 AND retired_at IS NULL FOR SHARE
		 RETURNING created_at`,
		sale.ID, bucket, sale.ProductID, sale.SalePriceCents, sale.Quantity, sale.PerUserLimit, sale.StartsAt, sale.EndsAt).
		Scan(&sale.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) {
		var retired bool
		err = s.db.poolFor(bucket).QueryRow(ctx, `SELECT retired_at IS NOT NULL FROM products WHERE id = $1`, sale.ProductID).Scan(&retired)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return flashsale.Errorf(flashsale.ENOTFOUND, "product not found")
		case err != nil:
			return fmt.Errorf("insert flash sale: %w", err)
		case retired:
			return flashsale.Errorf(flashsale.ECONFLICT, "product %s is retired; it gets no flash sale", sale.ProductID)
		}
		return fmt.Errorf("insert flash sale: product %d neither found nor retired", sale.ProductID)
	}
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return flashsale.Errorf(flashsale.ENOTFOUND, "product not found")
	} else if err != nil {
		return fmt.Errorf("insert flash sale: %w", err)
	}
	return nil
}

// FindSaleByID reads the one shard that holds the id's bucket.
func (s *SaleStore) FindSaleByID(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	sale, err := scanSale(s.db.poolFor(id.Bucket()).QueryRow(ctx,
		`SELECT `+saleColumns+` FROM flash_sales WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "flash sale not found")
	} else if err != nil {
		return nil, fmt.Errorf("find flash sale %d: %w", id, err)
	}
	return sale, nil
}

// FindSaleSettled reads the row FOR SHARE, which waits for an UpdateSale holding it FOR
// UPDATE to commit; the lock ends with the statement.
func (s *SaleStore) FindSaleSettled(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	sale, err := scanSale(s.db.poolFor(id.Bucket()).QueryRow(ctx,
		`SELECT `+saleColumns+` FROM flash_sales WHERE id = $1 FOR SHARE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "flash sale not found")
	} else if err != nil {
		return nil, fmt.Errorf("find flash sale %d: %w", id, err)
	}
	return sale, nil
}

// FindSalesByIDs sends one statement per shard touched.
func (s *SaleStore) FindSalesByIDs(ctx context.Context, ids []flashsale.SaleID) ([]*flashsale.FlashSale, []error) {
	return findByIDs(ctx, s.db, ids, flashsale.SaleID.Bucket,
		`SELECT `+saleColumns+` FROM flash_sales WHERE id = ANY($1)`, scanSale,
		func(s *flashsale.FlashSale) flashsale.SaleID { return s.ID }, "flash sale")
}

// ListSales scatters to every shard and merges by id.
func (s *SaleStore) ListSales(ctx context.Context, since time.Time) ([]*flashsale.FlashSale, error) {
	lists, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.FlashSale, error) {
		rows, err := s.db.pools[shard].Query(ctx,
			`SELECT `+saleColumns+` FROM flash_sales WHERE ends_at > $1 ORDER BY id`, since)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.FlashSale, error) { return scanSale(r) })
	})
	if err != nil {
		return nil, fmt.Errorf("list flash sales: %w", err)
	}
	all := slices.Concat(lists...)
	slices.SortFunc(all, func(a, b *flashsale.FlashSale) int { return cmp.Compare(a.ID, b.ID) })
	return all, nil
}

// FindCurrentSalesOfProducts sends one statement per shard touched: a sale lives in its
// product's bucket, so a product's sales are on the product's shard.
func (s *SaleStore) FindCurrentSalesOfProducts(ctx context.Context, ids []flashsale.ProductID, at time.Time) ([]*flashsale.FlashSale, []error) {
	values := make([]*flashsale.FlashSale, len(ids))
	errs := make([]error, len(ids))
	groups := groupByShard(s.db, ids, flashsale.ProductID.Bucket)
	shards := sortedShards(groups)
	found := make([]map[flashsale.ProductID]*flashsale.FlashSale, len(shards))
	shardErrs := make([]error, len(shards))
	parallel(len(shards), func(i int) {
		positions := groups[shards[i]]
		keys := make([]flashsale.ProductID, len(positions))
		for j, p := range positions {
			keys[j] = ids[p]
		}
		rows, err := s.db.pools[shards[i]].Query(ctx,
			`SELECT DISTINCT ON (product_id) `+saleColumns+` FROM flash_sales
			 WHERE product_id = ANY($1) AND starts_at <= $2 AND ends_at > $2
			 ORDER BY product_id, starts_at DESC, id DESC`, keys, at)
		if err != nil {
			shardErrs[i] = err
			return
		}
		sales, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.FlashSale, error) { return scanSale(r) })
		if err != nil {
			shardErrs[i] = err
			return
		}
		found[i] = make(map[flashsale.ProductID]*flashsale.FlashSale, len(sales))
		for _, sale := range sales {
			found[i][sale.ProductID] = sale
		}
	})
	for i, shard := range shards {
		for _, p := range groups[shard] {
			if shardErrs[i] != nil {
				errs[p] = fmt.Errorf("find current sale of product %d on shard %d: %w", ids[p], shard, shardErrs[i])
			} else {
				values[p] = found[i][ids[p]]
			}
		}
	}
	return values, errs
}

package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// What shop staff read and change: users found by prefix, a sale's orders by status, a sale's
// terms, a product's retirement. The lists scatter to every shard, each shard answers its
// first page after the cursor, and the pages merge by id: ids are unique across shards and
// grow with time, so a cursor (the last id shown) gives the same next page whatever the
// shards answer in between, and rows written meanwhile never shift a page already read.

// UpdateSale locks the sale's row, applies change, writes the row and calls follow before
// committing (see flashsale.SaleStore).
func (s *SaleStore) UpdateSale(ctx context.Context, id flashsale.SaleID, change, follow func(context.Context, *flashsale.FlashSale) error) (*flashsale.FlashSale, error) {
	var sale *flashsale.FlashSale
	err := pgx.BeginFunc(ctx, s.db.poolFor(id.Bucket()), func(tx pgx.Tx) error {
		var err error
		sale, err = scanSale(tx.QueryRow(ctx, `SELECT `+saleColumns+` FROM flash_sales WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return flashsale.Errorf(flashsale.ENOTFOUND, "flash sale not found")
		} else if err != nil {
			return err
		}
		if err := change(ctx, sale); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`UPDATE flash_sales SET sale_price_cents = $2, quantity = $3, per_user_limit = $4, starts_at = $5,
			   ends_at = $6, cancelled_at = $7
			 WHERE id = $1`,
			id, sale.SalePriceCents, sale.Quantity, sale.PerUserLimit, sale.StartsAt, sale.EndsAt, sale.CancelledAt); err != nil {
			return err
		}
		if follow != nil {
			return follow(ctx, sale)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update flash sale %d: %w", id, err)
	}
	return sale, nil
}

// checkRetirable refuses to retire a product that has a flash sale scheduled or running: its
// buyers were promised units. The product's row is locked by then, and CreateSale reads it
// FOR SHARE, so no sale can be created between this check and the commit. CONFLICT.
func checkRetirable(ctx context.Context, tx pgx.Tx, id flashsale.ProductID) error {
	var live bool
	if err := tx.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM flash_sales WHERE product_id = $1 AND cancelled_at IS NULL AND ends_at > now())`,
		id).Scan(&live); err != nil {
		return err
	}
	if live {
		return flashsale.Errorf(flashsale.ECONFLICT, "product %s has a flash sale scheduled or running; end or cancel it first", id)
	}
	return nil
}

// ListCatalog is ListProducts without the retired products, unless includeRetired.
func (s *ProductStore) ListCatalog(ctx context.Context, first int, after flashsale.ProductID, includeRetired bool) ([]*flashsale.Product, bool, error) {
	if includeRetired {
		return s.ListProducts(ctx, first, after)
	}
	pages, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.Product, error) {
		rows, err := s.db.pools[shard].Query(ctx,
			`SELECT `+productColumns+` FROM products WHERE id > $1 AND retired_at IS NULL ORDER BY id LIMIT $2`, after, first+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Product, error) { return scanProduct(r) })
	})
	if err != nil {
		return nil, false, fmt.Errorf("list the catalog: %w", err)
	}
	all, more := firstByID(slices.Concat(pages...), first, func(p *flashsale.Product) int64 { return int64(p.ID) })
	return all, more, nil
}

// ListUsers scatters to every shard: users live in the buckets of their emails, so a prefix
// names no shard. Emails are stored lower-cased, names are compared lower-cased.
func (s *UserStore) ListUsers(ctx context.Context, prefix string, first int, after flashsale.UserID) ([]*flashsale.User, bool, error) {
	query, args := `SELECT `+userColumns+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, []any{after, first + 1}
	if prefix != "" {
		query = `SELECT ` + userColumns + ` FROM users WHERE id > $1 AND (email LIKE $3 OR lower(name) LIKE $3)
		         ORDER BY id LIMIT $2`
		args = append(args, escapeLike(prefix)+"%")
	}
	pages, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.User, error) {
		rows, err := s.db.pools[shard].Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.User, error) { return scanUser(r) })
	})
	if err != nil {
		return nil, false, fmt.Errorf("list users: %w", err)
	}
	all, more := firstByID(slices.Concat(pages...), first, func(u *flashsale.User) int64 { return int64(u.ID) })
	for _, u := range all {
		u.PasswordHash = "" // never leaves the store for a list
	}
	return all, more, nil
}

// escapeLike makes s match itself literally in a LIKE pattern (whose escape character is
// the backslash by default).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListSaleOrders scatters to every shard, since a sale's buyers live everywhere, and walks
// each shard's orders_sale index newest first.
func (s *OrderStore) ListSaleOrders(ctx context.Context, sale flashsale.SaleID, status *flashsale.OrderStatus, first int, before flashsale.OrderID) ([]*flashsale.Order, bool, error) {
	if before == 0 {
		before = 1<<63 - 1
	}
	query, args := `SELECT `+orderColumns+` FROM orders WHERE sale_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		[]any{sale, before, first + 1}
	if status != nil {
		query = `SELECT ` + orderColumns + ` FROM orders WHERE sale_id = $1 AND id < $2 AND status = $4
		         ORDER BY id DESC LIMIT $3`
		args = append(args, string(*status))
	}
	pages, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.Order, error) {
		rows, err := s.db.pools[shard].Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
	})
	if err != nil {
		return nil, false, fmt.Errorf("list orders of flash sale %d: %w", sale, err)
	}
	all := slices.Concat(pages...)
	slices.SortFunc(all, func(a, b *flashsale.Order) int { return cmp.Compare(b.ID, a.ID) })
	if len(all) > first {
		return all[:first], true, nil
	}
	return all, false, nil
}

// firstByID sorts rows merged from the shards by id and keeps the first n, reporting whether
// more followed.
func firstByID[T any](rows []T, n int, id func(T) int64) ([]T, bool) {
	slices.SortFunc(rows, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	if len(rows) > n {
		return rows[:n], true
	}
	return rows, false
}

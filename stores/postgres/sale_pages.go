package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// saleWindows are the conditions on a sale's window that select a status by the clock ($3).
// Each status has its own statement, so no plan holds a condition that does not apply.
var saleWindows = map[flashsale.SaleStatus]string{
	flashsale.SaleScheduled: ` AND starts_at > $3`,
	flashsale.SaleActive:    ` AND starts_at <= $3 AND ends_at > $3`,
	flashsale.SaleSoldOut:   ` AND starts_at <= $3 AND ends_at > $3`,
	flashsale.SaleEnded:     ` AND ends_at <= $3`,
}

// PageSales asks every shard for its first first+1 sales after the cursor and merges them by
// id, as ListProducts does: ids grow with time, so pages are in creation order and stable.
func (s *SaleStore) PageSales(ctx context.Context, first int, after flashsale.SaleID, status *flashsale.SaleStatus, now time.Time) ([]*flashsale.FlashSale, bool, error) {
	query := `SELECT ` + saleColumns + ` FROM flash_sales WHERE id > $1`
	args := []any{after, first + 1}
	if status != nil {
		window, ok := saleWindows[*status]
		if !ok {
			return nil, false, flashsale.Errorf(flashsale.EINVALID, "%q is not a flash sale status", *status)
		}
		query += window
		args = append(args, now)
	}
	query += ` ORDER BY id LIMIT $2`
	pages, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.FlashSale, error) {
		rows, err := s.db.pools[shard].Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.FlashSale, error) { return scanSale(r) })
	})
	if err != nil {
		return nil, false, fmt.Errorf("page flash sales: %w", err)
	}
	all := slices.Concat(pages...)
	slices.SortFunc(all, func(a, b *flashsale.FlashSale) int { return cmp.Compare(a.ID, b.ID) })
	if len(all) > first {
		return all[:first], true, nil
	}
	return all, false, nil
}

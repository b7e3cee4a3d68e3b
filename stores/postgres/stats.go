package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// StatsStore keeps flash-sale statistics on the sale's shard.
type StatsStore struct{ db *DB }

// NewStatsStore returns a store over db.
func NewStatsStore(db *DB) *StatsStore { return &StatsStore{db: db} }

// Count adds an order event of a flash sale to the sale's per-minute figures, once per event:
// remembering the event and counting it commit together, so a redelivery counts nothing.
// It reports whether it counted.
func (s *StatsStore) Count(ctx context.Context, e flashsale.OrderEvent) (bool, error) {
	if e.SaleID == 0 {
		return false, nil
	}
	bucket := e.SaleID.Bucket()
	counted := false
	err := pgx.BeginFunc(ctx, s.db.poolFor(bucket), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO analytics_seen (event_id, bucket) VALUES ($1, $2) ON CONFLICT DO NOTHING`, e.EventID, bucket)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		counted = true
		var orders, units, revenue, paid, cancelled int
		switch e.Type {
		case flashsale.EventOrderPlaced:
			orders, units, revenue = 1, e.Quantity, e.TotalCents
		case flashsale.EventOrderPaid:
			paid = 1
		case flashsale.EventOrderCancelled, flashsale.EventOrderExpired:
			units, revenue, cancelled = -e.Quantity, -e.TotalCents, 1
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO sale_stats (sale_id, bucket, minute, orders, units, revenue_cents, paid_orders, cancelled)
			 VALUES ($1, $2, date_trunc('minute', $3::timestamptz), $4, $5, $6, $7, $8)
			 ON CONFLICT (sale_id, minute) DO UPDATE SET
			   orders = sale_stats.orders + EXCLUDED.orders, units = sale_stats.units + EXCLUDED.units,
			   revenue_cents = sale_stats.revenue_cents + EXCLUDED.revenue_cents,
			   paid_orders = sale_stats.paid_orders + EXCLUDED.paid_orders,
			   cancelled = sale_stats.cancelled + EXCLUDED.cancelled`,
			e.SaleID, bucket, e.At, orders, units, revenue, paid, cancelled)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("count event %s: %w", e.EventID, err)
	}
	return counted, nil
}

// SaleStats returns a sale's figures, minute by minute and in total (Attempts and Conversion
// are left to the caller, which reads attempts from the stock pool).
func (s *StatsStore) SaleStats(ctx context.Context, sale flashsale.SaleID) (*flashsale.SaleStats, error) {
	rows, err := s.db.poolFor(sale.Bucket()).Query(ctx,
		`SELECT minute, orders, units, revenue_cents, paid_orders, cancelled FROM sale_stats WHERE sale_id = $1 ORDER BY minute`, sale)
	if err != nil {
		return nil, fmt.Errorf("read stats of sale %d: %w", sale, err)
	}
	st := &flashsale.SaleStats{}
	var m flashsale.MinuteStats
	var paid, cancelled int
	var minute time.Time
	_, err = pgx.ForEachRow(rows, []any{&minute, &m.Orders, &m.Units, &m.RevenueCents, &paid, &cancelled}, func() error {
		m.Minute = minute.UTC()
		st.PerMinute = append(st.PerMinute, m)
		st.Orders += m.Orders
		st.UnitsSold += m.Units
		st.RevenueCents += m.RevenueCents
		st.PaidOrders += paid
		st.Cancelled += cancelled
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stats of sale %d: %w", sale, err)
	}
	return st, nil
}

package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
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
	counted, err := s.CountMany(ctx, []flashsale.OrderEvent{e})
	if err != nil {
		return false, fmt.Errorf("count event %s: %w", e.EventID, err)
	}
	return counted == 1, nil
}

// CountMany is Count for many events at once, and reports how many it counted: events of no
// sale, events counted before and later copies of an event given twice count nothing. It
// runs one transaction per shard touched, of two statements whatever the number of events,
// so that the analytics worker spends PostgreSQL's CPU on rows rather than on commits.
//
// A shard that fails leaves its events uncounted while other shards' may have committed;
// calling again with the same events counts exactly those left, so retrying is safe. An event
// id that is not a UUID fails the call (with EINVALID) before anything is written.
func (s *StatsStore) CountMany(ctx context.Context, events []flashsale.OrderEvent) (int, error) {
	byShard, err := s.saleEventsByShard(events)
	if err != nil {
		return 0, err
	}
	shards := make([]int, 0, len(byShard))
	for shard := range byShard {
		shards = append(shards, shard)
	}
	counts := make([]int, len(shards))
	errs := make([]error, len(shards))
	parallel(len(shards), func(i int) {
		counts[i], errs[i] = s.countOnShard(ctx, shards[i], byShard[shards[i]])
		if errs[i] != nil {
			errs[i] = fmt.Errorf("count %d event(s) on shard %d: %w", len(byShard[shards[i]]), shards[i], errs[i])
		}
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, errors.Join(errs...)
}

// seenEvent is a sale's event with its id in canonical form, the form PostgreSQL returns.
type seenEvent struct {
	id string
	e  flashsale.OrderEvent
}

// saleEventsByShard keeps the first copy of each event of a sale, grouped by the sale's
// shard and sorted by id within a shard: transactions that insert overlapping ids into
// analytics_seen then take their locks in the same order and cannot deadlock.
func (s *StatsStore) saleEventsByShard(events []flashsale.OrderEvent) (map[int][]seenEvent, error) {
	byShard := make(map[int][]seenEvent)
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if e.SaleID == 0 {
			continue
		}
		id, err := uuid.Parse(e.EventID)
		if err != nil {
			return nil, flashsale.Errorf(flashsale.EINVALID, "event id %q is not a UUID: %v", e.EventID, err)
		}
		key := id.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		shard := s.db.ShardOf(e.SaleID.Bucket())
		byShard[shard] = append(byShard[shard], seenEvent{id: key, e: e})
	}
	for _, list := range byShard {
		slices.SortFunc(list, func(a, b seenEvent) int { return cmp.Compare(a.id, b.id) })
	}
	return byShard, nil
}

// countOnShard remembers events on one shard and counts those it had not seen, in one
// transaction: an event is remembered if and only if it is counted.
func (s *StatsStore) countOnShard(ctx context.Context, shard int, events []seenEvent) (int, error) {
	counted := 0
	err := pgx.BeginFunc(ctx, s.db.pools[shard], func(tx pgx.Tx) error {
		fresh, err := rememberEvents(ctx, tx, events)
		if err != nil {
			return fmt.Errorf("remember events: %w", err)
		}
		counted = len(fresh)
		if err := addFigures(ctx, tx, sumFigures(fresh)); err != nil {
			return fmt.Errorf("add figures: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return counted, nil
}

// rememberEvents inserts the events' ids into analytics_seen and returns the events that
// were not there. ON CONFLICT DO NOTHING waits for a concurrent transaction inserting the
// same id and skips the id if that one commits, so two consumers never both count an event.
func rememberEvents(ctx context.Context, tx pgx.Tx, events []seenEvent) ([]flashsale.OrderEvent, error) {
	ids := make([]string, len(events))
	buckets := make([]int32, len(events))
	for i, se := range events {
		ids[i], buckets[i] = se.id, int32(se.e.SaleID.Bucket())
	}
	isNew, err := returnedSet[string](tx.Query(ctx,
		`INSERT INTO analytics_seen (event_id, bucket)
		 SELECT * FROM unnest($1::uuid[], $2::smallint[])
		 ON CONFLICT DO NOTHING
		 RETURNING event_id::text`, ids, buckets))
	if err != nil {
		return nil, err
	}
	var fresh []flashsale.OrderEvent
	for _, se := range events {
		if isNew[se.id] {
			fresh = append(fresh, se.e)
		}
	}
	return fresh, nil
}

// saleMinute is a row of sale_stats.
type saleMinute struct {
	sale   flashsale.SaleID
	minute time.Time
}

// figures are the amounts an event adds to its sale's minute.
type figures struct {
	orders, units, revenue, paid, cancelled, refunded int
}

func figuresOf(e flashsale.OrderEvent) figures {
	switch e.Type {
	case flashsale.EventOrderPlaced:
		return figures{orders: 1, units: e.Quantity, revenue: e.TotalCents}
	case flashsale.EventOrderPaid:
		return figures{paid: 1}
	case flashsale.EventOrderCancelled, flashsale.EventOrderExpired:
		f := figures{units: -e.Quantity, revenue: -e.TotalCents, cancelled: 1}
		if e.From == flashsale.OrderPaid {
			f.paid = -1 // a paid order cancelled is paid no more
		}
		return f
	case flashsale.EventOrderSettled:
		if e.Refunded {
			return figures{refunded: 1}
		}
	}
	return figures{}
}

// sumFigures adds up events per sale and minute. Summing here, not in SQL, leaves one row
// per key for the upsert, which may change a row only once per statement. The minute is the
// UTC one, as date_trunc('minute', ...) gives for any zone of whole-minute offset.
func sumFigures(events []flashsale.OrderEvent) map[saleMinute]figures {
	sums := make(map[saleMinute]figures)
	for _, e := range events {
		k := saleMinute{sale: e.SaleID, minute: e.At.UTC().Truncate(time.Minute)}
		f, add := sums[k], figuresOf(e)
		f.orders += add.orders
		f.units += add.units
		f.revenue += add.revenue
		f.paid += add.paid
		f.cancelled += add.cancelled
		f.refunded += add.refunded
		sums[k] = f
	}
	return sums
}

// addFigures adds sums to sale_stats in one upsert, in key order so that concurrent
// transactions lock shared rows in the same order.
func addFigures(ctx context.Context, tx pgx.Tx, sums map[saleMinute]figures) error {
	if len(sums) == 0 {
		return nil
	}
	keys := make([]saleMinute, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b saleMinute) int {
		return cmp.Or(cmp.Compare(a.sale, b.sale), a.minute.Compare(b.minute))
	})
	n := len(keys)
	sales, revenues := make([]int64, n), make([]int64, n)
	buckets := make([]int32, n)
	minutes := make([]time.Time, n)
	orders, units, paid, cancelled, refunded := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	for i, k := range keys {
		f := sums[k]
		sales[i], buckets[i], minutes[i] = int64(k.sale), int32(k.sale.Bucket()), k.minute
		orders[i], units[i], revenues[i], paid[i], cancelled[i] = int32(f.orders), int32(f.units), int64(f.revenue), int32(f.paid), int32(f.cancelled)
		refunded[i] = int32(f.refunded)
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO sale_stats (sale_id, bucket, minute, orders, units, revenue_cents, paid_orders, cancelled, refunded)
		 SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::integer[], $5::integer[],
		                      $6::bigint[], $7::integer[], $8::integer[], $9::integer[])
		 ON CONFLICT (sale_id, minute) DO UPDATE SET
		   orders = sale_stats.orders + EXCLUDED.orders, units = sale_stats.units + EXCLUDED.units,
		   revenue_cents = sale_stats.revenue_cents + EXCLUDED.revenue_cents,
		   paid_orders = sale_stats.paid_orders + EXCLUDED.paid_orders,
		   cancelled = sale_stats.cancelled + EXCLUDED.cancelled,
		   refunded = sale_stats.refunded + EXCLUDED.refunded`,
		sales, buckets, minutes, orders, units, revenues, paid, cancelled, refunded)
	return err
}

// SaleStats returns a sale's figures, minute by minute and in total (Attempts and Conversion
// are left to the caller, which reads attempts from the stock pool).
func (s *StatsStore) SaleStats(ctx context.Context, sale flashsale.SaleID) (*flashsale.SaleStats, error) {
	rows, err := s.db.poolFor(sale.Bucket()).Query(ctx,
		`SELECT minute, orders, units, revenue_cents, paid_orders, cancelled, refunded FROM sale_stats WHERE sale_id = $1 ORDER BY minute`, sale)
	if err != nil {
		return nil, fmt.Errorf("read stats of sale %d: %w", sale, err)
	}
	st := &flashsale.SaleStats{}
	var m flashsale.MinuteStats
	var paid, cancelled, refunded int
	var minute time.Time
	_, err = pgx.ForEachRow(rows, []any{&minute, &m.Orders, &m.Units, &m.RevenueCents, &paid, &cancelled, &refunded}, func() error {
		m.Minute = minute.UTC()
		st.PerMinute = append(st.PerMinute, m)
		st.Orders += m.Orders
		st.UnitsSold += m.Units
		st.RevenueCents += m.RevenueCents
		st.PaidOrders += paid
		st.Cancelled += cancelled
		st.RefundedOrders += refunded
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stats of sale %d: %w", sale, err)
	}
	return st, nil
}

package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/stores/postgres"
)

// state is what PostgreSQL and Redis hold about a drill's sale.
type state struct {
	remaining    int
	remainingErr error
	orders       map[flashsale.OrderID]orderRow
	notes        map[flashsale.OrderID]map[string]int // notifications by kind
	charges      map[flashsale.OrderID][]string       // outcomes of the gateway's charges
	refunded     map[flashsale.OrderID]bool
	stats        *flashsale.SaleStats
}

type orderRow struct {
	status   flashsale.OrderStatus
	quantity int
}

// remaining reads the sale's remaining units from Redis.
func (s *Stack) remaining(ctx context.Context, pool flashsale.PoolKey) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.Workers.Inventory.Remaining(ctx, pool)
}

// read reads the sale's orders, their notifications and charges, and its stats, from every
// shard, and its remaining units from Redis. The drill's databases are its own, so every
// charge and notification in them is of the drill's orders.
func (s *Stack) read(ctx context.Context, r *Run) (*state, error) {
	st := &state{
		orders: map[flashsale.OrderID]orderRow{}, notes: map[flashsale.OrderID]map[string]int{},
		charges: map[flashsale.OrderID][]string{}, refunded: map[flashsale.OrderID]bool{},
	}
	st.remaining, st.remainingErr = s.remaining(ctx, r.Pool())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db := s.Workers.DB
	for shard := range db.Shards() {
		pool := db.Pool(shard)
		rows, err := pool.Query(ctx, `SELECT id, status, quantity FROM orders WHERE sale_id = $1`, int64(r.SaleID))
		if err != nil {
			return nil, fmt.Errorf("read orders of shard %d: %w", shard, err)
		}
		for rows.Next() {
			var id int64
			var o orderRow
			if err := rows.Scan(&id, &o.status, &o.quantity); err != nil {
				rows.Close()
				return nil, err
			}
			st.orders[flashsale.OrderID(id)] = o
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read orders of shard %d: %w", shard, err)
		}
		rows, err = pool.Query(ctx, `SELECT order_id, kind FROM notifications`)
		if err != nil {
			return nil, fmt.Errorf("read notifications of shard %d: %w", shard, err)
		}
		for rows.Next() {
			var id int64
			var kind string
			if err := rows.Scan(&id, &kind); err != nil {
				rows.Close()
				return nil, err
			}
			if st.notes[flashsale.OrderID(id)] == nil {
				st.notes[flashsale.OrderID(id)] = map[string]int{}
			}
			st.notes[flashsale.OrderID(id)][kind]++
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read notifications of shard %d: %w", shard, err)
		}
		rows, err = pool.Query(ctx, `SELECT order_id, outcome FROM charges`)
		if err != nil {
			return nil, fmt.Errorf("read charges of shard %d: %w", shard, err)
		}
		for rows.Next() {
			var id int64
			var outcome string
			if err := rows.Scan(&id, &outcome); err != nil {
				rows.Close()
				return nil, err
			}
			st.charges[flashsale.OrderID(id)] = append(st.charges[flashsale.OrderID(id)], outcome)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read charges of shard %d: %w", shard, err)
		}
		// The gateway's refunds, where its ledger keeps them.
		var hasRefunds bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('refunds') IS NOT NULL`).Scan(&hasRefunds); err != nil {
			return nil, fmt.Errorf("look for refunds on shard %d: %w", shard, err)
		}
		if hasRefunds {
			rows, err = pool.Query(ctx, `SELECT order_id FROM refunds`)
			if err != nil {
				return nil, fmt.Errorf("read refunds of shard %d: %w", shard, err)
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, err
				}
				st.refunded[flashsale.OrderID(id)] = true
			}
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("read refunds of shard %d: %w", shard, err)
			}
		}
	}
	stats, err := postgres.NewStatsStore(db).SaleStats(ctx, r.SaleID)
	if err != nil {
		return nil, fmt.Errorf("read the sale's stats: %w", err)
	}
	st.stats = stats
	return st, nil
}

// live returns the units that PENDING and PAID orders hold, and how many are PENDING and PAID.
func (s *state) live() (units, pending, paid int) {
	for _, o := range s.orders {
		if o.status.HoldsStock() {
			units += o.quantity
		}
		switch o.status {
		case flashsale.OrderPending:
			pending++
		case flashsale.OrderPaid:
			paid++
		}
	}
	return units, pending, paid
}

// conserved says why remaining + units in live orders is not the quantity, if it is not.
func (s *state) conserved(quantity int) error {
	if s.remainingErr != nil {
		return fmt.Errorf("read remaining: %w", s.remainingErr)
	}
	units, _, _ := s.live()
	if units > quantity {
		return fmt.Errorf("%w: live orders hold %d units of %d", errForever, units, quantity)
	}
	if s.remaining+units != quantity {
		return fmt.Errorf("remaining %d + units in live orders %d = %d, want the quantity %d",
			s.remaining, units, s.remaining+units, quantity)
	}
	return nil
}

// settled says what is still to happen before every order is paid, notified and counted.
// Stock oversold is never mended, but the orders are still waited for: they are judged too.
func (s *state) settled(quantity int) error {
	if err := s.conserved(quantity); err != nil && !errors.Is(err, errForever) {
		return err
	}
	var errs []error
	units, pending, paid := s.live()
	if pending > 0 {
		errs = append(errs, fmt.Errorf("%d orders are PENDING", pending))
	}
	unnotified := 0
	for id, o := range s.orders {
		if s.notes[id][flashsale.EventOrderPlaced] == 0 || (o.status == flashsale.OrderPaid && s.notes[id][flashsale.EventOrderPaid] == 0) {
			unnotified++
		}
	}
	if unnotified > 0 {
		errs = append(errs, fmt.Errorf("%d orders lack a notification", unnotified))
	}
	if st := s.stats; st.Orders != len(s.orders) || st.PaidOrders != paid || st.UnitsSold != units {
		errs = append(errs, fmt.Errorf("stats count %d orders, %d paid, %d units; PostgreSQL holds %d orders, %d paid, %d units",
			st.Orders, st.PaidOrders, st.UnitsSold, len(s.orders), paid, units))
	}
	return errors.Join(errs...)
}

// judge fills rep's counts and fails t for every breach of the contract.
func (s *state) judge(t *testing.T, r *Run, rep *Report) {
	t.Helper()
	name := rep.Name
	quantity := r.Sale.Quantity
	units, _, paid := s.live()
	rep.Oversold = max(0, units-quantity)
	if rep.Oversold > 0 {
		t.Errorf("drill %s: oversold: live orders hold %d units of %d", name, units, quantity)
	}
	ackd := map[flashsale.OrderID]bool{}
	var lost []string
	for _, a := range r.accepted {
		ackd[a.order] = true
		o, ok := s.orders[a.order]
		switch {
		case !ok:
			lost = append(lost, fmt.Sprintf("%s is not in PostgreSQL", a.order))
		case o.status != flashsale.OrderPaid:
			lost = append(lost, fmt.Sprintf("%s is %s, want PAID", a.order, o.status))
		case s.notes[a.order][flashsale.EventOrderPlaced] == 0 || s.notes[a.order][flashsale.EventOrderPaid] == 0:
			lost = append(lost, fmt.Sprintf("%s has notifications %v, want order.placed and order.paid", a.order, s.notes[a.order]))
		}
	}
	rep.Lost = len(lost)
	if len(lost) > 0 {
		t.Errorf("drill %s: %d accepted orders lost on their way, such as: %s", name, len(lost), strings.Join(lost[:min(5, len(lost))], "; "))
	}
	if len(r.accepted) > quantity {
		t.Errorf("drill %s: oversold: %d orders accepted for %d units", name, len(r.accepted), quantity)
	}
	for id := range s.orders {
		if !ackd[id] {
			rep.Unacked++
		}
	}
	if st := s.stats; st.Orders < len(s.orders) || st.PaidOrders < paid {
		rep.Lost += max(0, len(s.orders)-st.Orders) + max(0, paid-st.PaidOrders)
		t.Errorf("drill %s: analytics lost events: stats count %d orders and %d paid, PostgreSQL holds %d and %d",
			name, st.Orders, st.PaidOrders, len(s.orders), paid)
	} else if st.Orders != len(s.orders) || st.PaidOrders != paid || st.UnitsSold != units {
		t.Errorf("drill %s: analytics counted twice: stats count %d orders, %d paid, %d units; PostgreSQL holds %d, %d, %d",
			name, st.Orders, st.PaidOrders, st.UnitsSold, len(s.orders), paid, units)
	}
	for id, outcomes := range s.charges {
		if len(outcomes) > 1 {
			rep.ChargedTwice++
			t.Errorf("drill %s: order %s was charged %d times", name, id, len(outcomes))
		}
		o, ok := s.orders[id]
		if outcomes[0] == "APPROVED" && (!ok || !o.status.HoldsStock()) && !s.refunded[id] {
			rep.ChargedForNothing++
			t.Errorf("drill %s: order %s was charged, holds no units (status %q) and was not refunded", name, id, o.status)
		}
	}
	for id, o := range s.orders {
		if o.status == flashsale.OrderPaid && len(s.charges[id]) == 0 {
			t.Errorf("drill %s: order %s is PAID without a charge", name, id)
		}
	}
	if err := s.conserved(quantity); err != nil {
		t.Errorf("drill %s: stock not conserved: %v", name, err)
	}
	if units < quantity || (units == quantity && s.remaining != 0) {
		t.Errorf("drill %s: did not sell out: live orders hold %d of %d units, %d remain", name, units, quantity, s.remaining)
	}
	if rep.Internal > 0 {
		t.Errorf("drill %s: %d answers were INTERNAL", name, rep.Internal)
	}
	if rep.GaveUp > 0 {
		t.Errorf("drill %s: %d tries were still refused as retryable after %v", name, rep.GaveUp, attemptPatience)
	}
	for code, n := range r.answers {
		if !expected[code] && code != "INTERNAL" {
			t.Errorf("drill %s: %d answers were %s, such as %q", name, n, code, r.samples[code])
		}
	}
}

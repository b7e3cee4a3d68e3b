package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// move is one requested status change of an order.
type move struct {
	id   flashsale.OrderID
	from []flashsale.OrderStatus
	to   flashsale.OrderStatus
}

// TransitionOrder updates the status only from an expected one, so of two racing moves (a
// payment and an expiry, say) exactly one wins, and writes the move's event with it.
// Concurrent moves on a shard share one transaction (see internal/combine): the payment worker
// moves a whole sale's orders within seconds. CONFLICT, NOT_FOUND.
func (s *OrderStore) TransitionOrder(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error) {
	o, err := s.moves.Do(ctx, s.db.ShardOf(id.Bucket()), move{id: id, from: from, to: to})
	if err != nil {
		return nil, fmt.Errorf("move order %d to %s: %w", id, to, err)
	}
	return o, nil
}

// moveOrders applies moves in one transaction. An order named twice (a cancel racing a
// payment) is moved in a later round of the same transaction, so the second move sees the
// first's result, exactly as if they had come one after the other.
func (s *OrderStore) moveOrders(ctx context.Context, shard int, moves []move) ([]combine.Outcome[*flashsale.Order], error) {
	outs := make([]combine.Outcome[*flashsale.Order], len(moves))
	err := pgx.BeginFunc(ctx, s.db.pools[shard], func(tx pgx.Tx) error {
		pending := make([]int, len(moves))
		for i := range pending {
			pending[i] = i
		}
		for len(pending) > 0 {
			var round []int
			round, pending = firstOfEachOrder(moves, pending)
			if err := moveRound(ctx, tx, moves, round, outs); err != nil {
				return err
			}
		}
		return nil
	})
	return outs, err
}

// firstOfEachOrder splits the pending moves (indexes into moves) into the first move of each
// order and those left for a later round.
func firstOfEachOrder(moves []move, pending []int) (round, later []int) {
	seen := make(map[flashsale.OrderID]bool, len(pending))
	for _, i := range pending {
		if seen[moves[i].id] {
			later = append(later, i)
			continue
		}
		seen[moves[i].id] = true
		round = append(round, i)
	}
	return round, later
}

// moveRound moves orders that are each named once, writing outs at the moves' indexes.
func moveRound(ctx context.Context, tx pgx.Tx, moves []move, round []int, outs []combine.Outcome[*flashsale.Order]) error {
	ids, froms, tos := make([]int64, len(round)), make([]string, len(round)), make([]string, len(round))
	for j, i := range round {
		m := moves[i]
		ids[j], tos[j] = int64(m.id), string(m.to)
		parts := make([]string, len(m.from))
		for k, f := range m.from {
			parts[k] = string(f)
		}
		froms[j] = strings.Join(parts, ",")
	}
	was, err := lockRound(ctx, tx, moves, round, ids)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx,
		`UPDATE orders o SET status = m.to_status, updated_at = now()
		 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS m(id, from_statuses, to_status)
		 WHERE o.id = m.id AND o.status = ANY(string_to_array(m.from_statuses, ','))
		 RETURNING o.id, o.user_id, o.product_id, coalesce(o.sale_id, 0), o.quantity, o.total_cents, o.status,
		           o.idempotency_key, o.created_at, o.updated_at, o.refunded_at`,
		ids, froms, tos)
	if err != nil {
		return err
	}
	moved, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
	if err != nil {
		return err
	}
	byID := make(map[flashsale.OrderID]*flashsale.Order, len(moved))
	for _, o := range moved {
		byID[o.ID] = o
	}
	var unmoved []int64
	events := make([]flashsale.OrderEvent, 0, len(moved))
	for _, i := range round {
		if o := byID[moves[i].id]; o != nil {
			outs[i].Val = o
			e := flashsale.NewOrderEvent(flashsale.EventTypeFor(o.Status), o)
			if e.From = was[o.ID]; len(moves[i].from) == 1 {
				e.From = moves[i].from[0] // the update matched only that status
			}
			events = append(events, e)
		} else {
			unmoved = append(unmoved, int64(moves[i].id))
		}
	}
	if err := explainUnmoved(ctx, tx, moves, round, unmoved, outs); err != nil {
		return err
	}
	return insertEvents(ctx, tx, events)
}

// lockRound locks the round's orders, in id order, when there are several (so two batches
// sharing orders wait for each other instead of deadlocking) or when a move may start from
// more than one status (a cancel of a PENDING or PAID order): the status read under the lock
// is the one the move leaves, which its event carries. A lone move from one status needs
// neither, and costs no extra statement.
func lockRound(ctx context.Context, tx pgx.Tx, moves []move, round []int, ids []int64) (map[flashsale.OrderID]flashsale.OrderStatus, error) {
	need := len(round) > 1
	for _, i := range round {
		need = need || len(moves[i].from) > 1
	}
	if !need {
		return nil, nil
	}
	locked := slices.Clone(ids)
	slices.Sort(locked)
	rows, err := tx.Query(ctx, `SELECT id, status FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE`, locked)
	if err != nil {
		return nil, err
	}
	was := make(map[flashsale.OrderID]flashsale.OrderStatus, len(locked))
	var id flashsale.OrderID
	var status flashsale.OrderStatus
	if _, err := pgx.ForEachRow(rows, []any{&id, &status}, func() error { was[id] = status; return nil }); err != nil {
		return nil, err
	}
	return was, nil
}

// explainUnmoved answers each move that changed nothing: NOT_FOUND, or CONFLICT naming the
// status the order is in.
func explainUnmoved(ctx context.Context, tx pgx.Tx, moves []move, round []int, unmoved []int64, outs []combine.Outcome[*flashsale.Order]) error {
	if len(unmoved) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id, status FROM orders WHERE id = ANY($1)`, unmoved)
	if err != nil {
		return err
	}
	current := map[flashsale.OrderID]flashsale.OrderStatus{}
	var id flashsale.OrderID
	var status flashsale.OrderStatus
	if _, err := pgx.ForEachRow(rows, []any{&id, &status}, func() error { current[id] = status; return nil }); err != nil {
		return err
	}
	for _, i := range round {
		if outs[i].Val != nil {
			continue
		}
		if st, ok := current[moves[i].id]; ok {
			outs[i].Err = flashsale.Errorf(flashsale.ECONFLICT, "order is %s, not %s", st, joinStatuses(moves[i].from))
		} else {
			outs[i].Err = flashsale.Errorf(flashsale.ENOTFOUND, "order not found")
		}
	}
	return nil
}

// insertEvents writes events to the outbox in one statement.
func insertEvents(ctx context.Context, tx pgx.Tx, events []flashsale.OrderEvent) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	ids, types, partitions, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	priorities := make([]int32, n)
	for i, e := range events {
		payload, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ids[i], types[i], partitions[i], payloads[i], priorities[i] = e.EventID, e.Type, e.PartitionKey(), string(payload), int32(e.Priority())
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO outbox (event_id, event_type, partition_key, priority, payload, trace_parent)
		 SELECT *, $6::text FROM unnest($1::uuid[], $2::text[], $3::text[], $4::smallint[], $5::jsonb[])`,
		ids, types, partitions, priorities, payloads, traceParent(ctx))
	return err
}

func joinStatuses(ss []flashsale.OrderStatus) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}

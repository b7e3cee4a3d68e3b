package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// OrderStore implements flashsale.OrderStore.
type OrderStore struct {
	db      *DB
	creates *combine.Combiner[newOrder, bool]
	moves   *combine.Combiner[move, *flashsale.Order]
	finds   *combine.Combiner[flashsale.OrderID, *flashsale.Order]
}

// Batching of order inserts: up to orderBatchRows rows per statement and orderWriters
// statements at once per shard (of DATABASE_POOL_SIZE connections; the rest serve reads).
const (
	orderBatchRows = 256
	orderWriters   = 2
)

// NewOrderStore returns a store over db.
func NewOrderStore(db *DB) *OrderStore {
	s := &OrderStore{db: db}
	s.creates = combine.New(db.Shards(), orderBatchRows, orderWriters, s.insertOrders, isRowError)
	s.moves = combine.New(db.Shards(), orderBatchRows, orderWriters, s.moveOrders, isRowError)
	s.finds = combine.New(db.Shards(), orderBatchRows, orderWriters, s.findOrders, isRowError)
	return s
}

var _ flashsale.OrderStore = (*OrderStore)(nil)

const orderColumns = `id, user_id, product_id, coalesce(sale_id, 0), quantity, total_cents, status, idempotency_key, created_at, updated_at, refunded_at`

func scanOrder(row pgx.Row) (*flashsale.Order, error) { return scanOrderWith(row) }

// scanOrderWith scans orderColumns followed by extra columns.
func scanOrderWith(row pgx.Row, extra ...any) (*flashsale.Order, error) {
	var o flashsale.Order
	dest := append([]any{&o.ID, &o.UserID, &o.ProductID, &o.SaleID, &o.Quantity, &o.TotalCents, &o.Status,
		&o.IdempotencyKey, &o.CreatedAt, &o.UpdatedAt, &o.RefundedAt}, extra...)
	err := row.Scan(dest...)
	return &o, err
}

// CreateOrder inserts the order and its order.placed event on the buyer's shard in one
// statement (a data-modifying CTE is atomic, like a transaction): the event exists if and only
// if the order does. Concurrent calls for one shard share statements (see internal/combine): in a
// flash sale a thousand orders arrive in the same second, and one commit for many rows is
// what keeps PostgreSQL's CPU and the connection pool free for everything else.
func (s *OrderStore) CreateOrder(ctx context.Context, o *flashsale.Order) error {
	return s.CreateOrderWhen(ctx, o, nil)
}

// CreateOrderWhen is CreateOrder committed only once confirm answers nil (see
// flashsale.OrderStore). A batch with such rows runs in a transaction that stays open while
// they wait: their units were reserved in the same instant as their confirmations began, so
// the wait is short, and it takes a writer from the shard's queue rather than a round trip
// from each order.
func (s *OrderStore) CreateOrderWhen(ctx context.Context, o *flashsale.Order, confirm func(context.Context) error) error {
	if o.ID.Bucket() != o.UserID.Bucket() {
		return fmt.Errorf("create order: order %d is not in its buyer's bucket", o.ID)
	}
	o.Status = flashsale.OrderPending
	// The time is set here, not by now(), so the event written with the order carries it.
	o.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	o.UpdatedAt = o.CreatedAt
	e := flashsale.NewOrderEvent(flashsale.EventOrderPlaced, o)
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	inserted, err := s.creates.Do(ctx, s.db.ShardOf(o.ID.Bucket()), newOrder{order: o, event: e, payload: string(payload), confirm: confirm, traceParent: traceParent(ctx)})
	if err != nil {
		return fmt.Errorf("insert order %d: %w", o.ID, markLost(err))
	}
	if !inserted {
		return flashsale.Errorf(flashsale.ECONFLICT, "an order with this idempotency key exists")
	}
	return nil
}

// newOrder is one row of insertOrders.
type newOrder struct {
	order   *flashsale.Order
	event   flashsale.OrderEvent
	payload string
	confirm func(context.Context) error // nil: commit at once
	// traceParent is the placing request's trace context, stored with the event.
	traceParent string
}

// insertOrders writes orders and their events in one statement. An order whose buyer already
// used its idempotency key is skipped (and so is its event): its outcome is false.
func (s *OrderStore) insertOrders(ctx context.Context, shard int, rows []newOrder) ([]combine.Outcome[bool], error) {
	n := len(rows)
	ids, users, products, totals := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	sales := make([]*int64, n)
	buckets, quantities, priorities := make([]int32, n), make([]int32, n), make([]int32, n)
	keys, eventIDs, types, partitions, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	traces := make([]string, n)
	created := make([]time.Time, n)
	for i, r := range rows {
		o := r.order
		ids[i], users[i], products[i], totals[i] = int64(o.ID), int64(o.UserID), int64(o.ProductID), int64(o.TotalCents)
		if o.SaleID != 0 {
			sale := int64(o.SaleID)
			sales[i] = &sale
		}
		buckets[i], quantities[i], priorities[i] = int32(o.ID.Bucket()), int32(o.Quantity), int32(r.event.Priority())
		keys[i], created[i] = o.IdempotencyKey, o.CreatedAt
		eventIDs[i], types[i], partitions[i], payloads[i] = r.event.EventID, r.event.Type, r.event.PartitionKey(), r.payload
		traces[i] = r.traceParent
	}
	args := []any{ids, buckets, users, products, sales, quantities, totals, keys, created, eventIDs, types, partitions, priorities, payloads, traces}
	if slices.ContainsFunc(rows, func(r newOrder) bool { return r.confirm != nil }) {
		return s.insertConfirmed(ctx, shard, rows, ids, eventIDs, args)
	}
	written, err := returnedSet[int64](s.db.pools[shard].Query(ctx, insertOrdersSQL, args...))
	if err != nil {
		return nil, err
	}
	outs := make([]combine.Outcome[bool], n)
	for i := range rows {
		outs[i].Val = written[ids[i]]
	}
	return outs, nil
}

// insertConfirmed runs insertOrdersSQL in a transaction begun in the same round trip, waits
// for every row's confirmation, deletes the rows (and events) refused, and commits. Any
// error leaves the transaction open on the connection, which the pool then closes rather
// than reuse, so nothing of the batch is written.
func (s *OrderStore) insertConfirmed(ctx context.Context, shard int, rows []newOrder, ids []int64, eventIDs []string, args []any) ([]combine.Outcome[bool], error) {
	conn, err := s.db.pools[shard].Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(insertOrdersSQL, args...)
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	var written map[int64]bool
	if err == nil {
		written, err = returnedSet[int64](br.Query())
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	outs := make([]combine.Outcome[bool], len(rows))
	var refusedOrders []int64
	var refusedEvents []string
	for i, r := range rows {
		outs[i].Val = written[ids[i]]
		if r.confirm == nil {
			continue
		}
		if err := r.confirm(ctx); err != nil {
			outs[i] = combine.Outcome[bool]{Err: err}
			if written[ids[i]] {
				refusedOrders, refusedEvents = append(refusedOrders, ids[i]), append(refusedEvents, eventIDs[i])
			}
		}
	}
	if ctx.Err() != nil { // a confirmation gave up waiting: nothing may commit
		return nil, ctx.Err()
	}
	end := &pgx.Batch{}
	if len(refusedOrders) > 0 {
		end.Queue(`DELETE FROM outbox WHERE event_id = ANY($1::uuid[])`, refusedEvents)
		end.Queue(`DELETE FROM orders WHERE id = ANY($1)`, refusedOrders)
	}
	end.Queue("COMMIT")
	if err := conn.SendBatch(ctx, end).Close(); err != nil {
		return nil, err
	}
	return outs, nil
}

const insertOrdersSQL = `WITH input AS (
		   SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[],
		                        $7::bigint[], $8::text[], $9::timestamptz[], $10::uuid[], $11::text[], $12::text[],
		                        $13::smallint[], $14::jsonb[], $15::text[])
		     AS i(id, bucket, user_id, product_id, sale_id, quantity, total_cents, idempotency_key, created_at,
		          event_id, event_type, partition_key, priority, payload, trace_parent)
		 ), placed AS (
		   INSERT INTO orders (id, bucket, user_id, product_id, sale_id, quantity, total_cents, status, idempotency_key, created_at, updated_at)
		   SELECT id, bucket, user_id, product_id, sale_id, quantity, total_cents, 'PENDING', idempotency_key, created_at, created_at
		   FROM input
		   ON CONFLICT (user_id, idempotency_key) DO NOTHING
		   RETURNING id
		 ), events AS (
		   INSERT INTO outbox (event_id, event_type, partition_key, priority, payload, trace_parent)
		   SELECT i.event_id, i.event_type, i.partition_key, i.priority, i.payload, i.trace_parent FROM input i JOIN placed USING (id)
		 )
		 SELECT id FROM placed`

// FindOrderByID reads the one shard that holds the id's bucket. Concurrent reads of a shard
// share one statement (see internal/combine): the payment worker reads each order it charges.
func (s *OrderStore) FindOrderByID(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error) {
	o, err := s.finds.Do(ctx, s.db.ShardOf(id.Bucket()), id)
	if err != nil && flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
		return nil, fmt.Errorf("find order %d: %w", id, markLost(err))
	}
	return o, err
}

// findOrders reads orders of one shard in one statement.
func (s *OrderStore) findOrders(ctx context.Context, shard int, ids []flashsale.OrderID) ([]combine.Outcome[*flashsale.Order], error) {
	rows, err := s.db.pools[shard].Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, err
	}
	byID := make(map[flashsale.OrderID]*flashsale.Order, len(found))
	for _, o := range found {
		byID[o.ID] = o
	}
	outs := make([]combine.Outcome[*flashsale.Order], len(ids))
	for i, id := range ids {
		if o := byID[id]; o != nil {
			outs[i].Val = o
		} else {
			outs[i].Err = flashsale.Errorf(flashsale.ENOTFOUND, "order not found")
		}
	}
	return outs, nil
}

// FindOrderByIdempotencyKey reads the buyer's shard.
func (s *OrderStore) FindOrderByIdempotencyKey(ctx context.Context, user flashsale.UserID, key string) (*flashsale.Order, error) {
	o, err := scanOrder(s.db.poolFor(user.Bucket()).QueryRow(ctx,
		`SELECT `+orderColumns+` FROM orders WHERE user_id = $1 AND idempotency_key = $2`, user, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "order not found")
	} else if err != nil {
		return nil, fmt.Errorf("find order by idempotency key: %w", err)
	}
	return o, nil
}

// FindOrdersByIDs sends one statement per shard touched.
func (s *OrderStore) FindOrdersByIDs(ctx context.Context, ids []flashsale.OrderID) ([]*flashsale.Order, []error) {
	return findByIDs(ctx, s.db, ids, flashsale.OrderID.Bucket,
		`SELECT `+orderColumns+` FROM orders WHERE id = ANY($1)`, scanOrder,
		func(o *flashsale.Order) flashsale.OrderID { return o.ID }, "order")
}

// ListUserOrders reads the user's shard; ids grow with time, so id order is age order.
func (s *OrderStore) ListUserOrders(ctx context.Context, user flashsale.UserID, first int, before flashsale.OrderID) ([]*flashsale.Order, bool, error) {
	if before == 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.poolFor(user.Bucket()).Query(ctx,
		`SELECT `+orderColumns+` FROM orders WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		user, before, first+1)
	if err != nil {
		return nil, false, fmt.Errorf("list orders of user %d: %w", user, err)
	}
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list orders of user %d: %w", user, err)
	}
	if len(orders) > first {
		return orders[:first], true, nil
	}
	return orders, false, nil
}

// HoldingOrders scatters to every shard: a pool's buyers live everywhere.
func (s *OrderStore) HoldingOrders(ctx context.Context, pool flashsale.PoolKey) ([]flashsale.Hold, error) {
	query, arg, err := holdingQuery(pool)
	if err != nil {
		return nil, err
	}
	lists, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]flashsale.Hold, error) {
		rows, err := s.db.pools[shard].Query(ctx, query, arg)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (flashsale.Hold, error) {
			var h flashsale.Hold
			err := r.Scan(&h.OrderID, &h.UserID, &h.Quantity, &h.IdempotencyKey, &h.At)
			return h, err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read holding orders of %s: %w", pool, err)
	}
	return slices.Concat(lists...), nil
}

func holdingQuery(pool flashsale.PoolKey) (string, int64, error) {
	const cols = `SELECT id, user_id, quantity, idempotency_key, created_at FROM orders WHERE status IN ('PENDING', 'PAID') AND `
	kind, id, _ := strings.Cut(string(pool), ":")
	switch kind {
	case "sale":
		sid, err := flashsale.ParseSaleID(id)
		return cols + `sale_id = $1`, int64(sid), err
	case "prd":
		pid, err := flashsale.ParseProductID(id)
		return cols + `sale_id IS NULL AND product_id = $1`, int64(pid), err
	}
	return "", 0, fmt.Errorf("unknown pool %q", pool)
}

// StalePending scatters to every shard and returns the oldest first.
func (s *OrderStore) StalePending(ctx context.Context, before time.Time, limit int) ([]*flashsale.Order, error) {
	lists, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) ([]*flashsale.Order, error) {
		rows, err := s.db.pools[shard].Query(ctx,
			`SELECT `+orderColumns+` FROM orders WHERE status = 'PENDING' AND created_at < $1 ORDER BY created_at LIMIT $2`,
			before, limit)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
	})
	if err != nil {
		return nil, fmt.Errorf("find stale pending orders: %w", err)
	}
	all := slices.Concat(lists...)
	slices.SortFunc(all, func(a, b *flashsale.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// ListOrdersOfUsers reads each shard once for all its users, taking each user's newest
// first+1 orders with a window function.
func (s *OrderStore) ListOrdersOfUsers(ctx context.Context, users []flashsale.UserID, first int) ([][]*flashsale.Order, []bool, []error) {
	lists := make([][]*flashsale.Order, len(users))
	more := make([]bool, len(users))
	errs := make([]error, len(users))
	groups := groupByShard(s.db, users, flashsale.UserID.Bucket)
	shards := sortedShards(groups)
	parallel(len(shards), func(i int) {
		positions := groups[shards[i]]
		keys := make([]flashsale.UserID, len(positions))
		for j, p := range positions {
			keys[j] = users[p]
		}
		rows, err := s.db.pools[shards[i]].Query(ctx,
			`SELECT `+orderColumns+` FROM (
			   SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS n
			   FROM orders WHERE user_id = ANY($1)) o
			 WHERE n <= $2 ORDER BY user_id, id DESC`, keys, first+1)
		var byUser map[flashsale.UserID][]*flashsale.Order
		if err == nil {
			var orders []*flashsale.Order
			orders, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
			byUser = make(map[flashsale.UserID][]*flashsale.Order)
			for _, o := range orders {
				byUser[o.UserID] = append(byUser[o.UserID], o)
			}
		}
		for _, p := range positions {
			if err != nil {
				errs[p] = fmt.Errorf("list orders of user %d on shard %d: %w", users[p], shards[i], err)
				continue
			}
			list := byUser[users[p]]
			if len(list) > first {
				list, more[p] = list[:first], true
			}
			lists[p] = list
		}
	})
	return lists, more, errs
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// Ledger implements flashsale.ReservationLedger: a pool's generation and reservations live
// on the shard of its sale or product.
type Ledger struct {
	db      *DB
	records *combine.Combiner[record, bool]
}

// Batching of records: a sale's reservations all land on its one shard, so concurrent ones
// share statements as order inserts do.
const (
	recordBatchRows = 256
	recordWriters   = 2
)

// NewLedger returns a ledger over db.
func NewLedger(db *DB) *Ledger {
	l := &Ledger{db: db}
	l.records = combine.New(db.Shards(), recordBatchRows, recordWriters, l.recordMany, isRowError)
	return l
}

var _ flashsale.ReservationLedger = (*Ledger)(nil)

// record is one row of recordMany.
type record struct {
	pool   flashsale.PoolKey
	bucket int
	gen    int64
	hold   flashsale.Hold
}

// Record notes a reservation before its order commits (see flashsale.ReservationLedger).
func (l *Ledger) Record(ctx context.Context, pool flashsale.PoolKey, gen int64, h flashsale.Hold) error {
	bucket, err := pool.Bucket()
	if err != nil {
		return fmt.Errorf("record reservation: %w", err)
	}
	ok, err := l.records.Do(ctx, l.db.ShardOf(bucket), record{pool: pool, bucket: bucket, gen: gen, hold: h})
	if err != nil {
		return fmt.Errorf("record reservation %d of %s: %w", h.Seq, pool, markLost(err))
	}
	if !ok {
		return flashsale.ErrStalePool
	}
	return nil
}

// recordMany records reservations of one shard in one statement. The pools' generation rows
// are read FOR SHARE: a Fence's update waits for the statement to commit, and a statement
// that waited for a Fence sees the new generation and records nothing of the old one. A row
// not inserted still counts as recorded if its number was already recorded for the same
// order (a retry), which a second, rare statement checks. A number at or below the pool's
// pruned mark is refused like a number recorded for another order.
func (l *Ledger) recordMany(ctx context.Context, _ int, rows []record) ([]combine.Outcome[bool], error) {
	n := len(rows)
	pools, keys := make([]string, n), make([]string, n)
	seqs, gens, orders, users := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	quantities, buckets := make([]int32, n), make([]int32, n)
	for i, r := range rows {
		pools[i], keys[i] = string(r.pool), r.hold.IdempotencyKey
		seqs[i], gens[i], orders[i], users[i] = r.hold.Seq, r.gen, int64(r.hold.OrderID), int64(r.hold.UserID)
		quantities[i], buckets[i] = int32(r.hold.Quantity), int32(r.bucket)
	}
	db := l.db.pools[l.db.ShardOf(rows[0].bucket)]
	ok, err := returnedSet[int64](db.Query(ctx,
		`WITH input AS (
		   SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[],
		                        $7::text[], $8::smallint[])
		     AS i(pool, seq, generation, order_id, user_id, quantity, idempotency_key, bucket)
		 ), live AS (
		   SELECT pool, generation, pruned_through FROM pool_generations WHERE pool IN (SELECT pool FROM input) FOR SHARE
		 )
		 INSERT INTO pool_reservations (pool, seq, bucket, generation, order_id, user_id, quantity, idempotency_key)
		 SELECT i.pool, i.seq, i.bucket, i.generation, i.order_id, i.user_id, i.quantity, i.idempotency_key
		 FROM input i JOIN live g ON g.pool = i.pool AND g.generation = i.generation AND i.seq > g.pruned_through
		 ON CONFLICT (pool, seq) DO NOTHING
		 RETURNING order_id`,
		pools, seqs, gens, orders, users, quantities, keys, buckets))
	if err != nil {
		return nil, err
	}
	outs := make([]combine.Outcome[bool], n)
	var missed []int
	for i := range rows {
		if !ok[orders[i]] {
			missed = append(missed, i)
		}
	}
	if len(missed) > 0 {
		var mp []string
		var ms, mg, mo []int64
		for _, i := range missed {
			mp, ms, mg, mo = append(mp, pools[i]), append(ms, seqs[i]), append(mg, gens[i]), append(mo, orders[i])
		}
		mine, err := returnedSet[int64](db.Query(ctx,
			`SELECT e.order_id FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS i(pool, seq, generation, order_id)
			 JOIN pool_generations g ON g.pool = i.pool AND g.generation = i.generation
			 JOIN pool_reservations e ON e.pool = i.pool AND e.seq = i.seq AND e.order_id = i.order_id`,
			mp, ms, mg, mo))
		for _, i := range missed {
			// The rows inserted stay inserted, so the batch does not fail as a whole.
			outs[i].Err = err
		}
		for id := range mine {
			ok[id] = true
		}
	}
	for i := range rows {
		outs[i].Val = ok[orders[i]]
	}
	return outs, nil
}

// Fence starts a new generation of pool unless it is already past seen (see
// flashsale.ReservationLedger). The update waits for every record statement holding the
// generation row, which is what makes the records of the old generation complete.
func (l *Ledger) Fence(ctx context.Context, pool flashsale.PoolKey, seen int64) (int64, error) {
	bucket, err := pool.Bucket()
	if err != nil {
		return 0, fmt.Errorf("fence %s: %w", pool, err)
	}
	var gen int64
	err = l.db.poolFor(bucket).QueryRow(ctx,
		`INSERT INTO pool_generations AS g (pool, bucket, generation) VALUES ($1, $2, 1)
		 ON CONFLICT (pool) DO UPDATE SET generation = g.generation + 1 WHERE g.generation <= $3
		 RETURNING generation`, string(pool), bucket, seen).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) { // already past seen: someone else fenced
		err = l.db.poolFor(bucket).QueryRow(ctx,
			`SELECT generation FROM pool_generations WHERE pool = $1`, string(pool)).Scan(&gen)
	}
	if err != nil {
		return 0, fmt.Errorf("fence %s: %w", pool, err)
	}
	return gen, nil
}

// Recorded returns pool's highest recorded sequence number and its recent reservations.
func (l *Ledger) Recorded(ctx context.Context, pool flashsale.PoolKey, within time.Duration) (int64, []flashsale.Hold, error) {
	bucket, err := pool.Bucket()
	if err != nil {
		return 0, nil, fmt.Errorf("recorded reservations of %s: %w", pool, err)
	}
	db := l.db.poolFor(bucket)
	var maxSeq int64
	if err := db.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM pool_reservations WHERE pool = $1`,
		string(pool)).Scan(&maxSeq); err != nil {
		return 0, nil, fmt.Errorf("recorded reservations of %s: %w", pool, err)
	}
	rows, err := db.Query(ctx,
		`SELECT seq, order_id, user_id, quantity, idempotency_key, created_at FROM pool_reservations
		 WHERE pool = $1 AND created_at > now() - make_interval(secs => $2)`, string(pool), within.Seconds())
	if err != nil {
		return 0, nil, fmt.Errorf("recorded reservations of %s: %w", pool, err)
	}
	recent, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (flashsale.Hold, error) {
		var h flashsale.Hold
		err := r.Scan(&h.Seq, &h.OrderID, &h.UserID, &h.Quantity, &h.IdempotencyKey, &h.At)
		return h, err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("recorded reservations of %s: %w", pool, err)
	}
	return maxSeq, recent, nil
}

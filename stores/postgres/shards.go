package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale"
)

// DB is the set of shards and the bucket table that routes rows to them.
type DB struct {
	pools   []*pgxpool.Pool
	buckets [flashsale.Buckets]int // bucket -> shard index
}

// Options tune how DB connects. The zero value is fine.
type Options struct {
	// MaxConns is each shard's pool size; zero keeps pgx's default (4 on two cores).
	MaxConns int
	// Tracer, if set, is called with the shard index of every pool and may return a tracer
	// for it (tests count statements per shard this way).
	Tracer func(shard int) pgx.QueryTracer
}

// planCacheMode is the plan_cache_mode of every connection. pgx prepares each statement once
// per connection, but PostgreSQL's default (auto) plans a prepared statement afresh at every
// bind while it judges a generic plan worse than a custom one, which it always does for the
// batch statements' array parameters (id = ANY($1), unnest($1, …)): in a 1,000-order sale,
// planning at bind was half of the statements' time. Every statement here filters on keys
// whose plan does not depend on the values, and the partial indexes' predicates are written
// as literals, so a generic plan, made once per connection, is the right one everywhere.
const planCacheMode = "force_generic_plan"

// Open connects to every shard (urls in shard order) and loads the bucket table from shard 0,
// writing the default assignment there on first use. Migrate must have run.
func Open(ctx context.Context, urls []string, opts Options) (_ *DB, err error) {
	if len(urls) == 0 {
		return nil, errors.New("postgres: no shards configured")
	}
	db := &DB{}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	for i, u := range urls {
		cfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			return nil, fmt.Errorf("postgres: shard %d: parse url: %w", i, err)
		}
		if opts.MaxConns > 0 && !strings.Contains(u, "pool_max_conns") {
			cfg.MaxConns = int32(opts.MaxConns) // a URL's pool_max_conns still wins
		}
		if opts.Tracer != nil {
			cfg.ConnConfig.Tracer = opts.Tracer(i)
		}
		cfg.ConnConfig.DialFunc = markUnavailable(i, cfg.ConnConfig.DialFunc)
		if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
			cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = planCacheMode // a URL's setting still wins
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("postgres: shard %d: connect: %w", i, err)
		}
		db.pools = append(db.pools, pool)
	}
	if err := db.loadBuckets(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// DefaultBucketShard is the shard of a bucket in a fresh deployment of n shards: contiguous
// ranges, so that a new shard can later take an equal slice from each.
func DefaultBucketShard(bucket, n int) int { return bucket * n / flashsale.Buckets }

// loadBuckets reads the bucket table from shard 0, seeding it on first start. The seed uses
// ON CONFLICT DO NOTHING so that concurrent first starts agree on one table.
func (db *DB) loadBuckets(ctx context.Context) error {
	n := len(db.pools)
	batch := &pgx.Batch{}
	for b := range flashsale.Buckets {
		batch.Queue(`INSERT INTO shard_buckets (bucket, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			b, DefaultBucketShard(b, n))
	}
	var count int
	if err := db.pools[0].QueryRow(ctx, `SELECT count(*) FROM shard_buckets`).Scan(&count); err != nil {
		return fmt.Errorf("postgres: read bucket table: %w", err)
	}
	if count < flashsale.Buckets {
		if err := db.pools[0].SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("postgres: seed bucket table: %w", err)
		}
	}
	rows, err := db.pools[0].Query(ctx, `SELECT bucket, shard FROM shard_buckets`)
	if err != nil {
		return fmt.Errorf("postgres: read bucket table: %w", err)
	}
	var bucket, shard int
	seen := 0
	_, err = pgx.ForEachRow(rows, []any{&bucket, &shard}, func() error {
		if shard >= n {
			return fmt.Errorf("bucket %d is assigned to shard %d but only %d shards are configured", bucket, shard, n)
		}
		db.buckets[bucket] = shard
		seen++
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: read bucket table: %w", err)
	}
	if seen != flashsale.Buckets {
		return fmt.Errorf("postgres: bucket table has %d rows, want %d", seen, flashsale.Buckets)
	}
	return nil
}

// Close closes every pool.
func (db *DB) Close() {
	for _, p := range db.pools {
		p.Close()
	}
}

// Shards returns the number of shards.
func (db *DB) Shards() int { return len(db.pools) }

// ShardOf returns the shard that owns a bucket.
func (db *DB) ShardOf(bucket int) int { return db.buckets[bucket] }

// Pool returns the pool of a shard.
func (db *DB) Pool(shard int) *pgxpool.Pool { return db.pools[shard] }

// poolFor returns the pool holding a bucket's rows.
func (db *DB) poolFor(bucket int) *pgxpool.Pool { return db.pools[db.buckets[bucket]] }

// BucketCounts returns how many buckets each shard owns.
func (db *DB) BucketCounts() []int {
	counts := make([]int, len(db.pools))
	for _, s := range db.buckets {
		counts[s]++
	}
	return counts
}

// Ping checks every shard and names the first that fails.
func (db *DB) Ping(ctx context.Context) error {
	_, err := scatter(ctx, db, db.allShards(), func(ctx context.Context, shard int) (struct{}, error) {
		return struct{}{}, db.pools[shard].Ping(ctx)
	})
	return err
}

func (db *DB) allShards() []int {
	all := make([]int, len(db.pools))
	for i := range all {
		all[i] = i
	}
	return all
}

// groupByShard returns, for each shard touched, the positions in keys of the keys it holds.
// Callers send one statement per shard with those keys and put the answers back by position,
// so results line up with keys whatever order the shards answer in.
func groupByShard[K any](db *DB, keys []K, bucket func(K) int) map[int][]int {
	groups := make(map[int][]int)
	for i, k := range keys {
		s := db.buckets[bucket(k)]
		groups[s] = append(groups[s], i)
	}
	return groups
}

func sortedShards(groups map[int][]int) []int {
	shards := make([]int, 0, len(groups))
	for s := range groups {
		shards = append(shards, s)
	}
	sort.Ints(shards)
	return shards
}

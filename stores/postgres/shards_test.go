package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

func TestOpenWritesDefaultBucketTable(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3, 4} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			t.Parallel()
			db, urls := testenv.DB(t, n, postgres.Options{})

			table := readBucketTable(t, urls[0])
			if got, want := len(table), flashsale.Buckets; got != want {
				t.Fatalf("shard 0 holds %d bucket rows; want %d", got, want)
			}
			for b, shard := range table {
				if want := postgres.DefaultBucketShard(b, n); shard != want {
					t.Errorf("bucket %d is stored on shard %d; want the default %d", b, shard, want)
				}
				if got, want := db.ShardOf(b), shard; got != want {
					t.Errorf("ShardOf(%d) = %d; want %d, as stored", b, got, want)
				}
			}
			for i, u := range urls[1:] {
				if got := len(readBucketTable(t, u)); got != 0 {
					t.Errorf("shard %d holds %d bucket rows; want 0 (only shard 0's table is authoritative)", i+1, got)
				}
			}
			counts := db.BucketCounts()
			for s, got := range counts {
				if want := flashsale.Buckets / n; got < want || got > want+1 {
					t.Errorf("shard %d owns %d buckets; want %d or %d", s, got, want, want+1)
				}
			}
		})
	}
}

func TestOpenReadsExistingBucketTable(t *testing.T) {
	t.Parallel()
	urls := testenv.Shards(t, 3)
	// An assignment no default would produce: a rebalanced table, as after resharding.
	custom := make([]int, flashsale.Buckets)
	for b := range custom {
		custom[b] = (b * 7) % 3
	}
	seedBucketTable(t, urls[0], custom)

	for i := range 2 { // the first Open reads the table; a re-Open reads the same
		db := openDB(t, urls, postgres.Options{})
		for b, want := range custom {
			if got := db.ShardOf(b); got != want {
				t.Fatalf("open %d: ShardOf(%d) = %d; want %d from the stored table", i+1, b, got, want)
			}
		}
	}
	if got := readBucketTable(t, urls[0]); !slices.Equal(got, custom) {
		t.Errorf("Open changed the stored bucket table")
	}
}

func TestReopenReadsSameBucketTable(t *testing.T) {
	t.Parallel()
	first, urls := testenv.DB(t, 4, postgres.Options{})
	before := readBucketTable(t, urls[0])
	second := openDB(t, urls, postgres.Options{})
	for b := range flashsale.Buckets {
		if got, want := second.ShardOf(b), first.ShardOf(b); got != want {
			t.Fatalf("after re-Open ShardOf(%d) = %d; want %d", b, got, want)
		}
	}
	if got := readBucketTable(t, urls[0]); !slices.Equal(got, before) {
		t.Errorf("re-Open changed the stored bucket table")
	}
}

func TestConcurrentFirstOpensAgree(t *testing.T) {
	t.Parallel()
	urls := testenv.Shards(t, 4)
	dbs := make([]*postgres.DB, 4)
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(context.Background(), urls, postgres.Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		t.Cleanup(dbs[i].Close)
	}
	table := readBucketTable(t, urls[0])
	for i, db := range dbs {
		for b, want := range table {
			if got := db.ShardOf(b); got != want {
				t.Fatalf("Open %d: ShardOf(%d) = %d; want %d", i, b, got, want)
			}
		}
	}
}

func TestOpenWithFewerShardsThanTableFails(t *testing.T) {
	t.Parallel()
	_, urls := testenv.DB(t, 4, postgres.Options{}) // writes a table naming shards 0..3

	db, err := postgres.Open(context.Background(), urls[:2], postgres.Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open with 2 of a table's 4 shards succeeded; want an error")
	}
	for _, want := range []string{"assigned to shard 2", "only 2 shards are configured"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q; want it to say %q", err, want)
		}
	}
}

func TestOpenWithoutShardsFails(t *testing.T) {
	t.Parallel()
	if db, err := postgres.Open(context.Background(), nil, postgres.Options{}); err == nil {
		db.Close()
		t.Fatal("Open with no shards succeeded; want an error")
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	db, urls := testenv.DB(t, 2, postgres.Options{}) // testenv has migrated once
	users := postgres.NewUserStore(db)
	u := &flashsale.User{Email: "kept@example.com", Name: "Kept", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := users.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	before := make([]int64, len(urls))
	for i, u := range urls {
		before[i] = gooseVersion(t, u)
		if before[i] <= 0 {
			t.Fatalf("shard %d: goose version %d after migrating; want > 0", i, before[i])
		}
	}
	for range 2 {
		if err := postgres.Migrate(t.Context(), urls); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	for i, u := range urls {
		if got, want := gooseVersion(t, u), before[i]; got != want {
			t.Errorf("shard %d: goose version %d after migrating again; want %d", i, got, want)
		}
	}
	if _, err := users.FindUserByID(t.Context(), u.ID); err != nil {
		t.Errorf("user written before migrating again: %v", err)
	}
}

// openDB opens the shards and closes them when the test ends.
func openDB(t *testing.T, urls []string, opts postgres.Options) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), urls, opts)
	if err != nil {
		t.Fatalf("open shards: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// countedDB opens n fresh shards with a statement counter on them.
func countedDB(t *testing.T, n int) (*postgres.DB, *apitest.StatementCounter, []string) {
	t.Helper()
	counter := apitest.NewStatementCounter()
	db, urls := testenv.DB(t, n, counter.Options())
	return db, counter, urls
}

// wantStatements fails unless the counter saw exactly want[s] statements on each shard s.
func wantStatements(t *testing.T, c *apitest.StatementCounter, want []int) {
	t.Helper()
	if got := c.Counts(); !slices.Equal(got, want) {
		t.Errorf("statements per shard: got %v, want %v\n%s", got, want, c)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// readBucketTable returns a shard's copy of the bucket table as bucket -> shard.
func readBucketTable(t *testing.T, url string) []int {
	t.Helper()
	rows, err := connect(t, url).Query(t.Context(), `SELECT shard FROM shard_buckets ORDER BY bucket`)
	if err != nil {
		t.Fatalf("read bucket table: %v", err)
	}
	table, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read bucket table: %v", err)
	}
	return table
}

func seedBucketTable(t *testing.T, url string, table []int) {
	t.Helper()
	buckets := make([]int, len(table))
	for b := range buckets {
		buckets[b] = b
	}
	_, err := connect(t, url).Exec(t.Context(),
		`INSERT INTO shard_buckets (bucket, shard) SELECT * FROM unnest($1::int[], $2::int[])`, buckets, table)
	if err != nil {
		t.Fatalf("seed bucket table: %v", err)
	}
}

func gooseVersion(t *testing.T, url string) int64 {
	t.Helper()
	var v int64
	if err := connect(t, url).QueryRow(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		t.Fatalf("read goose version: %v", err)
	}
	return v
}

// adminExec runs a statement on the server of url, connected to its "postgres" database.
func adminExec(t *testing.T, rawURL, sql string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	if _, err := connect(t, u.String()).Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dbName returns the database name of a shard url.
func dbName(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// TestBatchStatementsArePlannedOnce checks the pools' plan_cache_mode on what it is for: a
// statement with an array parameter, run again and again on one connection, is planned once
// (generic) rather than at every bind, which PostgreSQL's default does for such statements, as
// a URL asking for the default shows.
func TestBatchStatementsArePlannedOnce(t *testing.T) {
	t.Parallel()
	plans := func(t *testing.T, db *postgres.DB) (generic, custom int64) {
		t.Helper()
		ctx := t.Context()
		conn, err := db.Pool(0).Acquire(ctx)
		if err != nil {
			t.Fatalf("acquire: %v", err)
		}
		defer conn.Release()
		const q = `SELECT bucket FROM shard_buckets WHERE bucket = ANY($1::smallint[]) /* plan test */`
		for i := range 10 {
			if _, err := conn.Exec(ctx, q, []int16{int16(i), 7, 9}); err != nil {
				t.Fatalf("exec: %v", err)
			}
		}
		err = conn.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
			WHERE statement LIKE '%/* plan test */%'`).Scan(&generic, &custom)
		if err != nil {
			t.Fatalf("read pg_prepared_statements: %v", err)
		}
		return generic, custom
	}

	db, urls := testenv.DB(t, 1, postgres.Options{})
	if generic, custom := plans(t, db); custom != 0 || generic == 0 {
		t.Errorf("pool's connection: %d generic and %d custom plans for 10 runs; want only generic ones", generic, custom)
	}

	u, err := url.Parse(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("plan_cache_mode", "auto")
	u.RawQuery = q.Encode()
	auto, err := postgres.Open(t.Context(), []string{u.String()}, postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatalf("open with plan_cache_mode=auto: %v", err)
	}
	defer auto.Close()
	if _, custom := plans(t, auto); custom < 5 {
		t.Errorf("plan_cache_mode=auto in the URL: %d custom plans for 10 runs; want the URL's setting to win (PostgreSQL plans at least the first 5 custom)", custom)
	}
}

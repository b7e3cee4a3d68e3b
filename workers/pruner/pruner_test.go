package pruner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/workers/pruner"
)

// seed writes, on one shard, rows on both sides of every retention: prunable rows of each
// table past a retention of a day, and three rows of every kind that must stay.
func seed(t *testing.T, db *postgres.DB, shard int, prunable int) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool(shard).Exec(ctx, sql, args...); err != nil {
			t.Fatalf("seed shard %d: %v\n%s", shard, err, sql)
		}
	}
	outbox := func(label string, n int, published, streamed string) {
		exec(`INSERT INTO outbox (event_id, event_type, partition_key, payload, created_at, published_at, streamed_at)
		      SELECT gen_random_uuid(), $1, 'k', '{}', now() - interval '30 days', `+published+`, `+streamed+`
		      FROM generate_series(1, $2)`, label, n)
	}
	outbox("sent-long-ago", prunable, "now() - interval '2 days'", "now() - interval '2 days'")
	outbox("sent-lately", 3, "now() - interval '1 hour'", "now() - interval '1 hour'")
	outbox("one-sent-lately", 3, "now() - interval '2 days'", "now() - interval '1 hour'")
	outbox("unstreamed", 3, "now() - interval '2 days'", "NULL")
	outbox("unpublished", 3, "NULL", "now() - interval '2 days'")
	outbox("unsent", 3, "NULL", "NULL")

	exec(`INSERT INTO analytics_seen (event_id, bucket, seen_at)
	      SELECT gen_random_uuid(), 0, now() - interval '2 days' FROM generate_series(1, $1)`, prunable)
	exec(`INSERT INTO analytics_seen (event_id, bucket, seen_at)
	      SELECT gen_random_uuid(), 0, now() - interval '1 hour' FROM generate_series(1, 3)`)

	user := 1000 + shard
	exec(`INSERT INTO users (id, bucket, email, name, role, password_hash) VALUES ($1, 0, $2, 'U', 'CUSTOMER', 'x')`,
		user, fmt.Sprintf("u%d@example.test", user))
	token := func(label string, n int, expires, used, revoked string) {
		exec(`WITH f AS (
		        INSERT INTO refresh_families (family_id, bucket, user_id, created_at)
		        SELECT gen_random_uuid(), 0, $2, now() - interval '30 days' FROM generate_series(1, $3)
		        RETURNING family_id)
		      INSERT INTO refresh_tokens (token_hash, bucket, user_id, family_id, expires_at, used_at, revoked_at)
		      SELECT decode(md5($1 || f.family_id::text), 'hex'), 0, $2, f.family_id, `+expires+`, `+used+`, `+revoked+`
		      FROM f`, label, user, n)
	}
	token("expired-long-ago", prunable, "now() - interval '2 days'", "NULL", "NULL")
	token("spent-long-ago", 3, "now() + interval '20 days'", "now() - interval '2 days'", "NULL")
	token("revoked-long-ago", 3, "now() + interval '20 days'", "NULL", "now() - interval '2 days'")
	token("live", 3, "now() + interval '20 days'", "NULL", "NULL")
	token("spent-lately", 3, "now() + interval '20 days'", "now() - interval '1 hour'", "NULL")
	token("revoked-lately", 3, "now() + interval '20 days'", "NULL", "now() - interval '1 hour'")
	token("expired-lately", 3, "now() - interval '1 hour'", "NULL", "NULL")

	// The ledger: an old pool whose reservations are all past retention, of which its highest
	// stays; a live pool with prunable old reservations and three recent ones.
	reserve := func(pool string, from, to int, age string) {
		exec(`INSERT INTO pool_generations (pool, bucket, generation) VALUES ($1, 0, 1) ON CONFLICT DO NOTHING`, pool)
		exec(`INSERT INTO pool_reservations (pool, seq, bucket, generation, order_id, user_id, quantity, idempotency_key, created_at)
		      SELECT $1, s, 0, 1, s, 1, 1, 'k' || s, now() - $4::interval FROM generate_series($2::bigint, $3::bigint) s`,
			pool, from, to, age)
	}
	reserve("sale:old", 1, 4, "30 days")
	reserve("sale:live", 1, prunable, "2 days")
	reserve("sale:live", prunable+1, prunable+3, "1 hour")
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func count(t *testing.T, db *postgres.DB, shard int, sql string) int {
	t.Helper()
	var n int
	if err := db.Pool(shard).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("count on shard %d: %v\n%s", shard, err, sql)
	}
	return n
}

// A round deletes, on every shard and in batches, exactly the rows past their retention: no
// outbox row a broker has not confirmed, however old, and no refresh token still in use.
func TestPruneDeletesOnlyRowsPastRetention(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	const prunable = 25 // more than two batches of 10
	for shard := range db.Shards() {
		seed(t, db, shard, prunable)
	}
	reg := prometheus.NewRegistry()
	p := pruner.New(postgres.NewPruner(db), pruner.Config{
		OutboxRetention: 24 * time.Hour, DedupRetention: 24 * time.Hour, RefreshTokenRetention: 24 * time.Hour,
		ReservationRetention: 24 * time.Hour,
		Batch:                10, Pause: time.Millisecond, Registerer: reg,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	got := p.Prune(t.Context(), time.Now())
	shards := db.Shards()
	want := map[flashsale.PruneTable]int{
		flashsale.PruneOutbox:        shards * prunable,
		flashsale.PruneAnalyticsSeen: shards * prunable,
		flashsale.PruneRefreshTokens: shards * (prunable + 3 + 3), // expired, spent and revoked long ago
		// Every token of those families went with them; families with a live or recent token stay.
		flashsale.PruneRefreshFamilies: shards * (prunable + 3 + 3),
		flashsale.PruneReservations:    shards * (3 + prunable), // all but the old pool's highest, and the live pool's old ones
	}
	for table, w := range want {
		if got[table] != w {
			t.Errorf("pruned %d rows of %s, want %d", got[table], table, w)
		}
		if m := counterValue(t, p.Collector().WithLabelValues(string(table))); int(m) != w {
			t.Errorf("flashsale_pruned_rows_total{table=%q} = %v, want %d", table, m, w)
		}
	}

	for shard := range shards {
		for _, c := range []struct {
			what string
			sql  string
			want int
		}{
			{"outbox rows sent long ago", `SELECT count(*) FROM outbox WHERE event_type = 'sent-long-ago'`, 0},
			{"outbox rows kept", `SELECT count(*) FROM outbox WHERE event_type <> 'sent-long-ago'`, 5 * 3},
			{"outbox rows not sent to both brokers", `SELECT count(*) FROM outbox WHERE published_at IS NULL OR streamed_at IS NULL`, 3 * 3},
			{"events seen long ago", `SELECT count(*) FROM analytics_seen WHERE seen_at < now() - interval '1 day'`, 0},
			{"events seen lately", `SELECT count(*) FROM analytics_seen`, 3},
			{"refresh tokens dead long ago", `SELECT count(*) FROM refresh_tokens WHERE LEAST(expires_at, used_at, revoked_at) < now() - interval '1 day'`, 0},
			{"live refresh tokens", `SELECT count(*) FROM refresh_tokens WHERE expires_at > now() AND used_at IS NULL AND revoked_at IS NULL`, 3},
			{"refresh tokens kept", `SELECT count(*) FROM refresh_tokens`, 4 * 3},
			{"sign-ins kept, each with a token", `SELECT count(*) FROM refresh_families f WHERE EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id)`, 4 * 3},
			{"sign-ins kept", `SELECT count(*) FROM refresh_families`, 4 * 3},
			{"reservations kept", `SELECT count(*) FROM pool_reservations`, 1 + 3},
			{"the old pool's highest reservation", `SELECT count(*) FROM pool_reservations WHERE pool = 'sale:old' AND seq = 4`, 1},
			{"pools marked through their highest number pruned",
				fmt.Sprintf(`SELECT count(*) FROM pool_generations WHERE (pool, pruned_through) IN (('sale:old', 3), ('sale:live', %d))`, prunable), 2},
		} {
			if n := count(t, db, shard, c.sql); n != c.want {
				t.Errorf("shard %d: %s = %d, want %d", shard, c.what, n, c.want)
			}
		}
	}

	// A second round finds nothing more, and a later one takes what has aged since.
	if again := p.Prune(t.Context(), time.Now()); again[flashsale.PruneOutbox]+again[flashsale.PruneAnalyticsSeen]+again[flashsale.PruneRefreshTokens] != 0 {
		t.Errorf("a second round pruned %v; want nothing", again)
	}
	later := p.Prune(t.Context(), time.Now().Add(48*time.Hour))
	if n := later[flashsale.PruneOutbox]; n != shards*3*2 {
		t.Errorf("two days later pruned %d outbox rows, want %d (those sent to both brokers since)", n, shards*3*2)
	}
	for shard := range shards {
		if n := count(t, db, shard, `SELECT count(*) FROM outbox`); n != 3*3 {
			t.Errorf("shard %d: two days later %d outbox rows are left, want the %d not sent to both brokers", shard, n, 3*3)
		}
	}
}

// Run prunes at once, and returns when its context ends.
func TestRunPrunesAtOnceAndStopsWithItsContext(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	seed(t, db, 0, 5)
	p := pruner.New(postgres.NewPruner(db), pruner.Config{
		OutboxRetention: 24 * time.Hour, DedupRetention: 24 * time.Hour, RefreshTokenRetention: 24 * time.Hour,
		ReservationRetention: 24 * time.Hour,
		Every:                time.Hour,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := count(t, db, 0, `SELECT count(*) FROM analytics_seen`); n != 3 {
			return fmt.Errorf("%d events seen are left, want 3", n)
		}
		return nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

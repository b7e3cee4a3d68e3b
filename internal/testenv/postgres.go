package testenv

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PostgresAddr is the host:port of the PostgreSQL the test shards are on, for a proxy to
// stand in front of.
func PostgresAddr() string { return hostPort(pgBase, "5432") }

// TerminateBackends ends every PostgreSQL connection to the databases of the shard URLs, as
// an administrator's pg_terminate_backend or a restart would, and returns how many it ended.
// Only those databases' connections are touched: other tests' stay.
func TerminateBackends(ctx context.Context, shardURLs []string) (int, error) {
	names := make([]string, len(shardURLs))
	for i, u := range shardURLs {
		parsed, err := url.Parse(u)
		if err != nil {
			return 0, fmt.Errorf("shard URL %q: %w", u, err)
		}
		names[i] = strings.TrimPrefix(parsed.Path, "/")
	}
	conn, err := pgx.Connect(ctx, pgBase+"/postgres?sslmode=disable")
	if err != nil {
		return 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = ANY($1) AND pid <> pg_backend_pid()) AS ended`, names).Scan(&n)
	return n, err
}

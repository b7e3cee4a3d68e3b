package postgres

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale"
)

// ShardRetryAfter is how long a client is told to wait before retrying a request that
// needed a shard it could not reach.
const ShardRetryAfter = 5 * time.Second

// ShardUnavailableError is a shard that could not be reached: connecting to it failed. It
// is two errors at once: its cause, and a *flashsale.Error UNAVAILABLE that names the shard
// and says when to retry, which is what a client sees. A replica with one shard down goes on
// serving the others; only the requests that need that shard get this.
type ShardUnavailableError struct {
	Shard int
	Err   error
}

func (e *ShardUnavailableError) Error() string {
	return fmt.Sprintf("shard %d is unavailable: %v", e.Shard, e.Err)
}

// Unwrap returns the cause and the error a client sees.
func (e *ShardUnavailableError) Unwrap() []error {
	return []error{e.Err, flashsale.Retryable(flashsale.EUNAVAILABLE, ShardRetryAfter,
		"shard %d is unavailable; try again shortly", e.Shard)}
}

// markUnavailable makes dial's failures *ShardUnavailableError of shard. A failure the
// caller caused by giving up (ctx ended) is left as it is.
func markUnavailable(shard int, dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			return nil, &ShardUnavailableError{Shard: shard, Err: err}
		}
		return c, err
	}
}

// PingShards pings every shard at once and returns each one's error (nil when it answered),
// in shard order: readiness reports them one by one.
func (db *DB) PingShards(ctx context.Context) []error {
	errs := make([]error, len(db.pools))
	parallel(len(db.pools), func(i int) { errs[i] = db.pools[i].Ping(ctx) })
	return errs
}

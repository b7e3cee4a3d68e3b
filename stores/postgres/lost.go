package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale"
)

// LostRetryAfter is how long a client is told to wait before retrying a request whose
// connection to PostgreSQL died under it: the pool opens a new one at once.
const LostRetryAfter = time.Second

// ConnectionLostError is a statement whose connection ended while it ran (the server was
// restarted, an administrator terminated the backend: SQLSTATE class 57P, or the network
// dropped) or that got no answer before its deadline. It is two errors at once: its cause,
// and a *flashsale.Error UNAVAILABLE that tells the client the same request will succeed
// shortly, which is what a client sees. Whether a write committed is unknown; a client
// retrying with the same idempotency key gets the order if it did.
type ConnectionLostError struct {
	Err error
}

func (e *ConnectionLostError) Error() string { return fmt.Sprintf("connection lost: %v", e.Err) }

// Unwrap returns the cause and the error a client sees.
func (e *ConnectionLostError) Unwrap() []error {
	return []error{e.Err, flashsale.Retryable(flashsale.EUNAVAILABLE, LostRetryAfter,
		"the database did not answer; try again shortly")}
}

// markLost returns err as a *ConnectionLostError when it says the connection died or the
// answer did not come in time, and err itself otherwise.
func markLost(err error) error {
	if err == nil || flashsale.ErrorCode(err) != flashsale.EINTERNAL {
		return err
	}
	var pgErr *pgconn.PgError
	var netErr *net.OpError
	switch {
	case errors.As(err, &pgErr):
		if len(pgErr.Code) == 5 && (pgErr.Code[:3] == "57P" || pgErr.Code[:2] == "08") {
			return &ConnectionLostError{Err: err}
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &netErr), pgconn.SafeToRetry(err),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return &ConnectionLostError{Err: err}
	}
	return err
}

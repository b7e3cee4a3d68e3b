package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale"
)

func TestAStatementWhoseConnectionDiedIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"backend terminated", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, flashsale.EUNAVAILABLE},
		{"server shutting down", &pgconn.PgError{Code: "57P02"}, flashsale.EUNAVAILABLE},
		{"connection failure", &pgconn.PgError{Code: "08006"}, flashsale.EUNAVAILABLE},
		{"connection dropped mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), flashsale.EUNAVAILABLE},
		{"unique violation", &pgconn.PgError{Code: "23505"}, flashsale.EINTERNAL},
		{"no answer in time", context.DeadlineExceeded, flashsale.EUNAVAILABLE},
		{"canceled by the caller", context.Canceled, flashsale.EINTERNAL},
		{"other", errors.New("boom"), flashsale.EINTERNAL},
		{"already coded", flashsale.Errorf(flashsale.ECONFLICT, "taken"), flashsale.ECONFLICT},
	} {
		err := markLost(fmt.Errorf("insert order 1: %w", c.err))
		if got := flashsale.ErrorCode(err); got != c.want {
			t.Errorf("%s: code %s, want %s", c.name, got, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: the cause is no longer in the chain: %v", c.name, err)
		}
		if c.want == flashsale.EUNAVAILABLE && flashsale.RetryAfterSeconds(err) != 1 {
			t.Errorf("%s: retryAfter %d s, want 1", c.name, flashsale.RetryAfterSeconds(err))
		}
	}
}

package flashsale_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"not ours", errors.New("boom"), 0},
		{"no retry", flashsale.Errorf(flashsale.ESOLDOUT, "sold out"), 0},
		{"rounded up", flashsale.Retryable(flashsale.ERATELIMITED, 1200*time.Millisecond, "slow down"), 2},
		{"at least one", flashsale.Retryable(flashsale.EUNAVAILABLE, time.Millisecond, "recounting"), 1},
		{"wrapped", fmt.Errorf("reserve: %w", flashsale.Retryable(flashsale.EUNAVAILABLE, 3*time.Second, "x")), 3},
	}
	for _, tt := range tests {
		if got := flashsale.RetryAfterSeconds(tt.err); got != tt.want {
			t.Errorf("%s: RetryAfterSeconds = %d, want %d", tt.name, got, tt.want)
		}
	}
}

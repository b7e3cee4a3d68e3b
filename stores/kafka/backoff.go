package kafka

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the pause before retry number attempt (from 1): lo doubled attempt-1
// times, at most hi, less up to a quarter at random so that consumers retrying against the
// same failing dependency spread out.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if shift := attempt - 1; shift >= 0 && shift < 32 && lo<<shift > 0 && lo<<shift < hi {
		d = lo << shift
	}
	return d - rand.N(d/4+1)
}

// sleep waits for d and reports whether it did, or returns false as soon as ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

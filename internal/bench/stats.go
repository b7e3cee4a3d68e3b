package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

// latencies are the durations of one measurement's operations.
type latencies []time.Duration

// percentileMs returns the p-th percentile (nearest rank) in milliseconds, 0 for none. It
// sorts l.
func (l latencies) percentileMs(p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	rank := min(max(int(math.Ceil(p/100*float64(len(l)))), 1), len(l))
	return ms(l[rank-1])
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

// seconds is d in seconds, to the millisecond.
func seconds(d time.Duration) float64 { return round3(d.Seconds()) }

// perSecond is n over d, to a tenth; 0 for no time.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// poll calls done every period until it reports true, ctx ends, or timeout passes, and
// reports whether done did.
func poll(ctx context.Context, period, timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) || !loadgen.Sleep(ctx, period) {
			return false
		}
	}
}

// measureTries is how many times a measurement is tried before its failure fails the
// benchmark: on a shared machine a neighbour can briefly take every PostgreSQL connection
// ("too many clients"), which says nothing about the shop.
const measureTries = 3

// retry runs measure until it succeeds, measureTries times at most, saying on progress why
// a try failed.
func retry[T any](ctx context.Context, progress io.Writer, what string, measure func() (T, error)) (T, error) {
	var v T
	var err error
	for try := 1; try <= measureTries; try++ {
		if v, err = measure(); err == nil || ctx.Err() != nil {
			return v, err
		}
		fmt.Fprintf(progress, "%s: try %d of %d failed: %v\n", what, try, measureTries, err)
		if !loadgen.Sleep(ctx, time.Second) {
			return v, err
		}
	}
	return v, err
}

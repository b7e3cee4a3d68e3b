package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/graph"
)

// A failing check is Degraded until it has failed for the grace, counted from the first
// failure of a run; a success ends the run, so the next failure starts a new grace.
func TestGraceCheckFailsOnlyAfterTheGrace(t *testing.T) {
	t.Parallel()
	var (
		now  = time.Unix(1000, 0)
		fail = true
	)
	g := &graceCheck{
		check: func(context.Context) error {
			if fail {
				return errors.New("connection refused")
			}
			return nil
		},
		grace: 10 * time.Second,
		now:   func() time.Time { return now },
	}
	steps := []struct {
		advance time.Duration
		fail    bool
		want    string // "ok", "degraded" or "fatal"
	}{
		{0, true, "degraded"},
		{9 * time.Second, true, "degraded"},
		{1 * time.Second, true, "fatal"},
		{time.Minute, true, "fatal"},
		{0, false, "ok"},
		{time.Second, true, "degraded"}, // a new run of failures, a new grace
		{9 * time.Second, true, "degraded"},
		{2 * time.Second, true, "fatal"},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		fail = s.fail
		err := g.run(context.Background())
		got := "ok"
		if err != nil {
			got = "fatal"
			if graph.IsDegraded(err) {
				got = "degraded"
			}
		}
		if got != s.want {
			t.Errorf("step %d (+%v, failing %v): %s (%v), want %s", i, s.advance, s.fail, got, err, s.want)
		}
	}
}

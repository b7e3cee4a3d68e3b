package flashsale

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is a rate-limit budget: Rate events every Period on average, with up to Burst of them
// at once. The zero Limit is no limit at all.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// IsZero reports whether l is no limit.
func (l Limit) IsZero() bool { return l == Limit{} }

// Interval is the average time between two events l allows.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// String writes l as ParseLimit reads it.
func (l Limit) String() string {
	if l.IsZero() {
		return "off"
	}
	return fmt.Sprintf("%d/%s:%d", l.Rate, l.Period, l.Burst)
}

// RateDecision is a rate limiter's answer to one event.
type RateDecision struct {
	Allowed bool
	// RetryAfter, when the event is refused, is how long until the same event would pass.
	RetryAfter time.Duration
}

// RateLimiter counts events against a budget per key, shared by every process that uses the
// same store, so that a client spreading its requests over the replicas meets one budget.
type RateLimiter interface {
	// Allow takes one event from key's budget under limit. An error means the store could
	// not be asked; the caller decides what to do without it.
	Allow(ctx context.Context, key string, limit Limit) (RateDecision, error)
}

// ParseLimit reads a limit written "RATE/PERIOD" or "RATE/PERIOD:BURST", such as "20/1s:60"
// (20 a second, 60 at once) or "10/1m" (burst 10); PERIOD is a Go duration, or a bare s, m
// or h for one of them. "off" (or "0") is no limit.
func ParseLimit(s string) (Limit, error) {
	if s == "off" || s == "0" {
		return Limit{}, nil
	}
	bad := fmt.Errorf("limit %q: want RATE/PERIOD[:BURST] such as 20/1s:60, or off", s)
	rate, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, bad
	}
	period, burst, hasBurst := strings.Cut(rest, ":")
	var l Limit
	var err error
	if l.Rate, err = strconv.Atoi(strings.TrimSpace(rate)); err != nil || l.Rate < 1 {
		return Limit{}, bad
	}
	switch period = strings.TrimSpace(period); period {
	case "s", "m", "h":
		period = "1" + period
	}
	if l.Period, err = time.ParseDuration(period); err != nil || l.Period <= 0 || l.Period < time.Duration(l.Rate) {
		return Limit{}, bad
	}
	l.Burst = l.Rate
	if hasBurst {
		if l.Burst, err = strconv.Atoi(strings.TrimSpace(burst)); err != nil || l.Burst < 1 {
			return Limit{}, bad
		}
	}
	return l, nil
}

package loadgen

import (
	"maps"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		d := make([]time.Duration, len(ns))
		for i, n := range ns {
			d[i] = time.Duration(n) * time.Millisecond
		}
		return d
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", ms(7), 50, 7 * time.Millisecond},
		{"one value p99", ms(7), 99, 7 * time.Millisecond},
		{"two values p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"two values p51", ms(1, 2), 51, 2 * time.Millisecond},
		{"four values p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"four values p75", ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{"four values p100", ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p95", hundred, 95, 95 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p99.5", hundred, 99.5, 100 * time.Millisecond},
		{"tiny p rounds up to the first", hundred, 0.001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v; want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	lat := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
	atts := []attempt{
		{done: true, buyer: 0, latency: lat(10), at: at(10), orderID: "o1", units: 1},
		{done: true, buyer: 1, latency: lat(20), at: at(30), orderID: "o2", units: 1},
		{done: true, buyer: 0, latency: lat(30), at: at(40), code: "LIMIT_EXCEEDED"},
		{done: true, buyer: 2, latency: lat(40), at: at(50), code: "SOLD_OUT"},
		{done: true, buyer: 3, latency: lat(50), at: at(60), code: "SOLD_OUT"},
		{done: true, buyer: 3, latency: lat(60), at: at(70), code: CodeTransport},
		{done: false}, // never made: not counted
		// Buyer 1 is granted a second unit though the limit is 1.
		{done: true, buyer: 1, latency: lat(70), at: at(90), orderID: "o3", units: 1},
		// The same order id for another attempt: counted as accepted, not as more units.
		{done: true, buyer: 2, latency: lat(80), at: at(95), orderID: "o2", units: 1},
	}
	s := summarize(atts, 1)
	if got, want := s.attempts, 8; got != want {
		t.Errorf("attempts = %d; want %d", got, want)
	}
	if got, want := s.accepted, 4; got != want {
		t.Errorf("accepted = %d; want %d", got, want)
	}
	if got, want := s.acceptedUnits, 3; got != want {
		t.Errorf("acceptedUnits = %d; want %d", got, want)
	}
	if got, want := s.duplicates, 1; got != want {
		t.Errorf("duplicates = %d; want %d", got, want)
	}
	if got, want := s.overLimit, 1; got != want {
		t.Errorf("overLimit = %d; want %d", got, want)
	}
	wantRej := map[string]int{"LIMIT_EXCEEDED": 1, "SOLD_OUT": 2, CodeTransport: 1}
	if !maps.Equal(s.rejections, wantRej) {
		t.Errorf("rejections = %v; want %v", s.rejections, wantRej)
	}
	if got, want := s.lastAccepted, at(95); !got.Equal(want) {
		t.Errorf("lastAccepted = %v; want %v", got, want)
	}
	if got, want := len(s.orders), 3; got != want {
		t.Errorf("len(orders) = %d; want %d", got, want)
	}
	if s.p50 != lat(40) || s.p95 != lat(80) || s.p99 != lat(80) || s.max != lat(80) {
		t.Errorf("p50/p95/p99/max = %v/%v/%v/%v; want 40ms/80ms/80ms/80ms", s.p50, s.p95, s.p99, s.max)
	}
}

func TestSummarizeNothing(t *testing.T) {
	t.Parallel()
	s := summarize(make([]attempt, 3), 1)
	if s.attempts != 0 || s.accepted != 0 || len(s.rejections) != 0 || s.p99 != 0 || !s.lastAccepted.IsZero() {
		t.Errorf("summarize(no attempts made) = %+v; want all zero", s)
	}
}

func TestResultCheck(t *testing.T) {
	t.Parallel()
	cfg := Config{Quantity: 10, PerUserLimit: 1, DrainTimeout: time.Second}
	tests := []struct {
		name           string
		r              Result
		wantOversold   int
		wantViolations int
	}{
		{"clean", Result{AcceptedUnits: 10, Sold: 10, Remaining: 0, SaleStatus: "SOLD_OUT", Attempts: 30, Accepted: 10}, 0, 0},
		{"accepted too many", Result{AcceptedUnits: 12, Sold: 10, SaleStatus: "SOLD_OUT"}, 2, 1},
		{"sold too many", Result{AcceptedUnits: 10, Sold: 13, SaleStatus: "SOLD_OUT"}, 3, 1},
		{"lost and over limit", Result{AcceptedUnits: 5, Sold: 5, Remaining: 5, SaleStatus: "ACTIVE", Lost: 1, Missing: 1, OverLimitBuyers: 2}, 0, 2},
		{"duplicate ids", Result{AcceptedUnits: 10, Sold: 10, SaleStatus: "SOLD_OUT", DuplicateIDs: 1}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.r
			r.check(cfg)
			if r.Oversold != tt.wantOversold {
				t.Errorf("oversold = %d; want %d", r.Oversold, tt.wantOversold)
			}
			if len(r.Violations) != tt.wantViolations {
				t.Errorf("violations = %q; want %d of them", r.Violations, tt.wantViolations)
			}
			if got, want := r.OK(), tt.wantViolations == 0; got != want {
				t.Errorf("OK() = %v; want %v", got, want)
			}
		})
	}
}

func TestResultCheckConservation(t *testing.T) {
	t.Parallel()
	r := Result{AcceptedUnits: 8, Sold: 8, Remaining: 1, SaleStatus: "ACTIVE", Accepted: 8, Attempts: 8}
	r.check(Config{Quantity: 10, PerUserLimit: 1})
	if len(r.Violations) != 0 || len(r.Warnings) != 1 {
		t.Errorf("remaining 1 + sold 8 of 10: violations %q, warnings %q; want none and one", r.Violations, r.Warnings)
	}
}

func TestSlowAttemptsAreToldByWhenTheyBegan(t *testing.T) {
	t.Parallel()
	start := time.Now()
	lastAccepted := start.Add(300 * time.Millisecond)
	at := func(began, took time.Duration) attempt {
		return attempt{done: true, latency: took, at: start.Add(began + took)}
	}
	atts := []attempt{
		at(0, 80*time.Millisecond),                   // the first wave
		at(99*time.Millisecond, 51*time.Millisecond), // still the first wave
		at(100*time.Millisecond, 60*time.Millisecond),
		at(299*time.Millisecond, 70*time.Millisecond),
		at(300*time.Millisecond, 90*time.Millisecond), // after the last accepted answer
		at(10*time.Millisecond, 50*time.Millisecond),  // not over 50 ms
		at(400*time.Millisecond, 10*time.Millisecond),
		{latency: time.Second}, // never made
	}
	got := slowAttempts(atts, start, lastAccepted)
	want := SlowAttempts{OverMs: 50, FirstWave: 2, WhileSelling: 2, AfterSellOut: 1}
	if got != want {
		t.Errorf("slowAttempts = %+v, want %+v", got, want)
	}
}

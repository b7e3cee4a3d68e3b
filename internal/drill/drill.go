// Package drill runs fault drills: a flash sale on the real stack (the API, and a worker
// process with the outbox relays, payments, notifications, analytics on a Kafka broker, and
// the sweeper), with one fault injected a third of the way through, after which it checks
// the contract's invariants: never oversold, never lost, stock conserved, never charged for
// nothing. Buyers behave as a well-behaved client does: they retry UNAVAILABLE and
// RATE_LIMITED after the retryAfter they were given, and a request that got no answer.
//
// Each drill reports one line through t.Logf, for a script to collect:
//
//	drill: name=redis-flush stopped_ms=3120 accepted=150 ... lost=0
//
// stopped_ms is the longest gap between accepted orders from the last one before the fault
// to the sale's sell-out: how long selling stopped.
package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Report is what a drill measured.
type Report struct {
	Name     string
	Attempts int // order requests of the burst, retries included
	Accepted int // orders accepted during the burst
	// Answers counts the burst's refusals by code (TRANSPORT: no answer).
	Answers map[string]int
	GaveUp  int // tries abandoned after attemptPatience of retryable answers
	// Stopped is the longest gap between accepted orders around the fault.
	Stopped time.Duration
	// BurstUnsold is what Redis said remained when the burst's buyers had finished (-1:
	// unreadable), and MopUp the orders placed after reconciliation returned units.
	BurstUnsold int
	MopUp       int
	Unacked     int // orders written whose buyer never got the answer
	Violations
}

// Violations count breaches of the contract's invariants; all must be zero.
type Violations struct {
	Oversold          int // units in live orders beyond the quantity
	Lost              int // accepted orders missing, unpaid, unnotified or uncounted
	ChargedTwice      int
	ChargedForNothing int // approved charges of orders that hold no units, not refunded
	Internal          int // INTERNAL answers
}

// Line is the report as one line of key=value pairs.
func (r *Report) Line() string {
	codes := make([]string, 0, len(r.Answers))
	for c, n := range r.Answers {
		if c != "" {
			codes = append(codes, fmt.Sprintf("%s:%d", c, n))
		}
	}
	sort.Strings(codes)
	refused := strings.Join(codes, ",")
	if refused == "" {
		refused = "none"
	}
	return fmt.Sprintf("drill: name=%s stopped_ms=%d attempts=%d accepted=%d refused=%s gave_up=%d burst_unsold=%d mop_up=%d unacked=%d oversold=%d lost=%d charged_twice=%d charged_for_nothing=%d internal=%d",
		r.Name, r.Stopped.Milliseconds(), r.Attempts, r.Accepted, refused, r.GaveUp, r.BurstUnsold, r.MopUp, r.Unacked,
		r.Oversold, r.Lost, r.ChargedTwice, r.ChargedForNothing, r.Internal)
}

// settleWithin bounds how long the stack may take, after the burst, to reconcile the pool
// and to pay, notify and count every order: a liveness bound, not a speed claim. It allows
// for a payment retried after the consumers' longest retry delay (30 s).
const settleWithin = 90 * time.Second

// Drill runs sale on st with f injected a third of the way through, checks the invariants,
// logs the report line and returns the report. Breaches fail t.
func Drill(t *testing.T, st *Stack, sale Sale, f Fault) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &Run{
		Stack: st, Sale: sale, t: t, done: make(chan struct{}),
		answers: map[string]int{}, samples: map[string]string{},
		client: newBuyerClient(st.url, sale.Concurrency),
	}
	defer r.client.close()
	began := time.Now()
	r.setUp(ctx)
	setUp := time.Since(began)

	var faultAt time.Time
	faultErr := make(chan error, 1)
	go func() {
		var err error
		returned := false
		defer func() {
			if !returned { // a helper's t.Fatal ended this goroutine
				err = errors.New("the fault's goroutine ended without returning")
			}
			faultErr <- err
		}()
		if !r.WaitSold(ctx, sale.Quantity/3) {
			err, returned = fmt.Errorf("the sale never sold a third of its units (%d sold)", r.Sold()), true
			return
		}
		faultAt = time.Now()
		err = f.Inject(ctx, r)
		returned = true
	}()
	r.burst(ctx)
	burstEnd := time.Now()
	close(r.done)
	if err := <-faultErr; err != nil {
		t.Errorf("drill %s: the fault: %v", f.Name, err)
	}

	rep := &Report{Name: f.Name, Answers: r.answers, GaveUp: r.gaveUp}
	for _, n := range r.answers {
		rep.Attempts += n
	}
	rep.Accepted = r.answers[""]
	rep.Internal = r.answers["INTERNAL"]
	rep.Stopped = stopped(r.accepted, faultAt, burstEnd)
	rep.BurstUnsold = -1
	if left, err := st.remaining(ctx, r.Pool()); err == nil {
		rep.BurstUnsold = left
	}

	// Reconciliation returns what a crash left held; buyers then take it.
	var final *state
	check := func(want func(*state) error) error {
		return eventually(settleWithin, func() error {
			s, err := st.read(ctx, r)
			if err != nil {
				return err
			}
			final = s
			return want(s)
		})
	}
	if err := check(func(s *state) error { return s.conserved(sale.Quantity) }); err != nil {
		t.Errorf("drill %s: the pool is not reconciled: %v", f.Name, err)
	} else if err := r.mopUp(ctx, func() (int, error) { return st.remaining(ctx, r.Pool()) }); err != nil {
		t.Errorf("drill %s: the sale does not sell out: %v", f.Name, err)
	}
	rep.MopUp = r.moppedUp
	if err := check(func(s *state) error { return s.settled(sale.Quantity) }); err != nil {
		t.Errorf("drill %s: the orders are not all settled: %v", f.Name, err)
	}
	if final == nil {
		t.Fatalf("drill %s: the sale's state could not be read", f.Name)
	}
	final.judge(t, r, rep)
	t.Logf("drill %s: set up in %v, burst in %v, settled %v after it", f.Name, setUp.Round(time.Millisecond),
		burstEnd.Sub(began.Add(setUp)).Round(time.Millisecond), time.Since(burstEnd).Round(time.Millisecond))
	t.Log(rep.Line())
	return rep
}

// stopped is the longest gap between the burst's accepted orders from the last one before the
// fault to the last one of the burst (or the burst's end, if none came after the fault).
func stopped(all []accepted, faultAt, burstEnd time.Time) time.Duration {
	if faultAt.IsZero() {
		return 0
	}
	var times []time.Time
	for _, a := range all {
		if !a.mopUp {
			times = append(times, a.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	from := faultAt
	var after []time.Time
	for _, at := range times {
		if at.After(faultAt) {
			after = append(after, at)
		} else {
			from = at
		}
	}
	if len(after) == 0 {
		return burstEnd.Sub(from)
	}
	var longest time.Duration
	prev := from
	for _, at := range after {
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return longest
}

// errForever marks a check's failure that no waiting can mend: units oversold.
var errForever = errors.New("oversold")

// eventually polls check until it returns nil, and returns its last error once within has
// passed or at once if the error is errForever.
func eventually(within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || errors.Is(err, errForever) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

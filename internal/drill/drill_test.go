package drill

import (
	"testing"
	"time"
)

func TestStoppedIsTheLongestGapFromTheLastOrderBeforeTheFault(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []accepted {
		var out []accepted
		for _, m := range ms {
			out = append(out, accepted{at: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return out
	}
	ms := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Millisecond) }
	for _, c := range []struct {
		name     string
		orders   []accepted
		fault    time.Time
		burstEnd time.Time
		want     time.Duration
	}{
		{"a pause after the fault", at(0, 10, 20, 30, 1530, 1540), ms(25), ms(2000), 1500 * time.Millisecond},
		{"gaps before the fault do not count", at(0, 900, 910, 920), ms(905), ms(1000), 10 * time.Millisecond},
		{"nothing sold after the fault", at(0, 10), ms(20), ms(3010), 3 * time.Second},
		{"no fault", at(0, 5000), time.Time{}, ms(6000), 0},
		{"orders out of order", at(1540, 30, 1530, 0, 10, 20), ms(25), ms(2000), 1500 * time.Millisecond},
	} {
		if got := stopped(c.orders, c.fault, c.burstEnd); got != c.want {
			t.Errorf("%s: stopped = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTheReportLineListsRefusalsByCodeInOrder(t *testing.T) {
	t.Parallel()
	r := Report{Name: "x", Attempts: 9, Accepted: 3, Answers: map[string]int{"": 3, "UNAVAILABLE": 2, "SOLD_OUT": 4},
		Stopped: 1234 * time.Millisecond, Violations: Violations{Lost: 1}}
	want := "drill: name=x stopped_ms=1234 attempts=9 accepted=3 refused=SOLD_OUT:4,UNAVAILABLE:2 gave_up=0 burst_unsold=0 mop_up=0 unacked=0 oversold=0 lost=1 charged_twice=0 charged_for_nothing=0 internal=0"
	if got := r.Line(); got != want {
		t.Errorf("Line() =\n%s\nwant\n%s", got, want)
	}
}

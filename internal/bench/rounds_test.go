package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestCombineRoundsTakesMediansAndWorstInvariants(t *testing.T) {
	round := func(attempts, floor, p99, drain float64, sold, lost int, violations ...string) *FlashSaleResult {
		return &FlashSaleResult{AttemptsPerS: attempts, FloorPerS: floor, P50Ms: p99 / 4, P99Ms: p99, DrainS: drain,
			Drained: true, Quantity: 1000, Sold: sold, Lost: lost, Violations: violations}
	}
	rounds := []*FlashSaleResult{
		round(9000, 20000, 120, 1.9, 1000, 0),                   // ratio 0.45
		round(8000, 20000, 100, 1.6, 1000, 0),                   // ratio 0.40
		round(11000, 20000, 150, 2.4, 999, 1, "lost order o-1"), // ratio 0.55
	}
	rounds[2].Drained = false
	r := combineRounds(rounds)

	if r.AttemptsPerS != 9000 || r.FloorPerS != 20000 {
		t.Errorf("attempts %v/s beside floor %v/s; want the median-ratio round's 9000 and 20000", r.AttemptsPerS, r.FloorPerS)
	}
	if r.P99Ms != 120 || r.P50Ms != 30 || r.DrainS != 1.9 {
		t.Errorf("p50 %v, p99 %v, drain %v; want each figure's median 30, 120, 1.9", r.P50Ms, r.P99Ms, r.DrainS)
	}
	if r.Sold != 999 || r.Lost != 1 || r.Drained {
		t.Errorf("sold %d, lost %d, drained %v; want the worst round's 999, every lost order (1), not drained", r.Sold, r.Lost, r.Drained)
	}
	if len(r.Violations) != 1 || !strings.HasPrefix(r.Violations[0], "round 3: ") {
		t.Errorf("violations %q; want round 3's, named", r.Violations)
	}
	if len(r.Rounds) != 3 || r.Rounds[1].Ratio != 0.4 {
		t.Errorf("rounds %+v; want all three, in order", r.Rounds)
	}

	res := &Results{FlashSale: r}
	var attempts, p99 Row
	for _, row := range res.Rows() {
		switch {
		case strings.HasPrefix(row.Figure, "flash sale: attempts/s ("):
			attempts = row
		case strings.HasPrefix(row.Figure, "flash sale: p99"):
			p99 = row
		}
	}
	if attempts.Ratio != "0.45× (0.40–0.55)" || p99.Value != "120 (100–150)" {
		t.Errorf("rows show ratio %q and p99 %q; want the median with the rounds' range", attempts.Ratio, p99.Value)
	}
}

func TestCombineRoundsOfOneIsThatRound(t *testing.T) {
	one := &FlashSaleResult{AttemptsPerS: 9000, FloorPerS: 20000, P99Ms: 120, Violations: []string{}}
	r := combineRounds([]*FlashSaleResult{one})
	if r.AttemptsPerS != 9000 || r.P99Ms != 120 || len(r.Rounds) != 1 {
		t.Errorf("combined %+v; want the round itself", r)
	}
	if got := (&Results{FlashSale: r}).Rows(); !slices.ContainsFunc(got, func(row Row) bool { return row.Ratio == "0.45×" }) {
		t.Errorf("rows %+v; want the ratio with no range", got)
	}
}

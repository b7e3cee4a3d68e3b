package bench

import (
	"cmp"
	"fmt"
	"slices"
)

// DefaultFlashRounds is how many sales the flash-sale benchmark runs. On a shared machine one
// burst's ratio to its floor moved between 0.37 and 0.53 from run to run of the same code;
// the median of three, each burst beside its own floors, moves far less.
const DefaultFlashRounds = 3

// RoundFigures are one round's headline figures.
type RoundFigures struct {
	AttemptsPerS     float64 `json:"attempts_per_s"`
	FloorPerS        float64 `json:"floor_per_s"`
	Ratio            float64 `json:"ratio"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	DrainS           float64 `json:"drain_s"`
	DrainObservedS   float64 `json:"drain_observed_s"`
	Drained          bool    `json:"drained"`
	Sold             int     `json:"sold"`
	Oversold         int     `json:"oversold"`
	Lost             int     `json:"lost"`
	RefusedWithStock int     `json:"refused_with_stock"`
}

func (r *FlashSaleResult) figures() RoundFigures {
	f := RoundFigures{
		AttemptsPerS: r.AttemptsPerS, FloorPerS: r.FloorPerS, P50Ms: r.P50Ms, P99Ms: r.P99Ms,
		DrainS: r.DrainS, DrainObservedS: r.DrainObservedS, Drained: r.Drained, Sold: r.Sold, Oversold: r.Oversold, Lost: r.Lost,
		RefusedWithStock: r.RefusedWithStock,
	}
	if r.FloorPerS > 0 {
		f.Ratio = r.AttemptsPerS / r.FloorPerS
	}
	return f
}

// combineRounds reports rounds as one result. The speed figures are medians: attempts/s and
// the floor come from the round whose ratio between them is the median, so that the ratio
// shown is one a round measured, while p50, p99 and the drain are each their own median.
// With an even count the worse of the two middle values is taken. The invariants are the
// worst of any round: the fewest units sold, the most oversold, every lost order, every
// violation. Rounds keeps each round's figures.
func combineRounds(rounds []*FlashSaleResult) *FlashSaleResult {
	if len(rounds) == 1 {
		r := *rounds[0]
		r.Rounds = []RoundFigures{r.figures()}
		return &r
	}
	figs := make([]RoundFigures, len(rounds))
	for i, round := range rounds {
		figs[i] = round.figures()
	}
	byRatio := make([]int, len(rounds))
	for i := range byRatio {
		byRatio[i] = i
	}
	slices.SortStableFunc(byRatio, func(a, b int) int { return cmp.Compare(figs[a].Ratio, figs[b].Ratio) })
	r := *rounds[byRatio[(len(rounds)-1)/2]] // the lower middle: the worse ratio
	r.Rounds = figs

	r.P50Ms = worseMedian(figs, func(f RoundFigures) float64 { return f.P50Ms })
	r.P99Ms = worseMedian(figs, func(f RoundFigures) float64 { return f.P99Ms })
	r.DrainS = worseMedian(figs, func(f RoundFigures) float64 { return f.DrainS })
	r.DrainObservedS = worseMedian(figs, func(f RoundFigures) float64 { return f.DrainObservedS })
	r.Violations, r.Warnings = nil, nil
	r.Lost, r.RefusedWithStock = 0, 0
	for i, round := range rounds {
		r.Drained = r.Drained && round.Drained
		r.Sold = min(r.Sold, round.Sold)
		r.Oversold = max(r.Oversold, round.Oversold)
		r.Lost += round.Lost
		r.RefusedWithStock += round.RefusedWithStock
		for _, v := range round.Violations {
			r.Violations = append(r.Violations, fmt.Sprintf("round %d: %s", i+1, v))
		}
		for _, w := range round.Warnings {
			r.Warnings = append(r.Warnings, fmt.Sprintf("round %d: %s", i+1, w))
		}
	}
	if r.Violations == nil {
		r.Violations = []string{}
	}
	return &r
}

// worseMedian is the median of a latency-like figure over the rounds, the higher of the two
// middle values when their count is even.
func worseMedian(figs []RoundFigures, of func(RoundFigures) float64) float64 {
	vals := make([]float64, len(figs))
	for i, f := range figs {
		vals[i] = of(f)
	}
	return upperMedian(vals)
}

// upperMedian is the median of vals, the higher of the two middle values when their count is
// even; 0 for none. It sorts vals.
func upperMedian(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	return vals[len(vals)/2]
}

// spread formats the range of a figure over the rounds, "" for a single round.
func spread(figs []RoundFigures, format string, of func(RoundFigures) float64) string {
	if len(figs) < 2 {
		return ""
	}
	lo, hi := of(figs[0]), of(figs[0])
	for _, f := range figs[1:] {
		lo, hi = min(lo, of(f)), max(hi, of(f))
	}
	return fmt.Sprintf(" (%s–%s)", fmt.Sprintf(format, lo), fmt.Sprintf(format, hi))
}

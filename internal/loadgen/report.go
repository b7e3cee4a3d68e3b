package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// WriteTable writes the result as a table for people, then its violations and warnings.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", name, fmt.Sprintf(format, args...))
	}
	row("run", "%s, flash sale %s", r.RunID, r.FlashSaleID)
	row("buyers", "%d (registered in %.1f s)", r.Buyers, r.RegisterS)
	row("attempts", "%d at concurrency %d in %.3f s", r.Attempts, r.Concurrency, r.BurstS)
	row("attempts/s", "%.1f", r.AttemptsPerS)
	if r.FloorPerS > 0 {
		row("floor { __typename }/s", "%.1f (p50 %.2f ms, p99 %.2f ms; %.1f before the burst, %.1f after)",
			r.FloorPerS, r.FloorP50Ms, r.FloorP99Ms, r.FloorBeforePerS, r.FloorAfterPerS)
	}
	row("latency p50/p95/p99", "%.2f / %.2f / %.2f ms (max %.2f)", r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs)
	row("accepted", "%d (%d units), sold out %.3f s into the burst", r.Accepted, r.AcceptedUnits, r.SellOutS)
	row("accepted latency p50/p99", "%.2f / %.2f ms", r.AcceptedP50Ms, r.AcceptedP99Ms)
	for _, code := range slices.Sorted(maps.Keys(r.Rejections)) {
		row("rejected "+code, "%d", r.Rejections[code])
	}
	row("quantity", "%d", r.Quantity)
	row("sold (PENDING/PAID)", "%d", r.Sold)
	row("remaining", "%d (%s)", r.Remaining, r.SaleStatus)
	row("oversold", "%d", r.Oversold)
	row("over-limit buyers", "%d", r.OverLimitBuyers)
	row("duplicate order ids", "%d", r.DuplicateIDs)
	row("unacknowledged orders", "%d", r.Unacknowledged)
	if r.Lost == 0 {
		row("lost", "0")
	} else {
		row("lost", "%d (missing %d, not PAID %v)", r.Lost, r.Missing, r.Unpaid)
	}
	if r.Drained {
		row("drain", "%.3f s from the last order to the last PAID (polls saw it %.3f s after the last answer)", r.DrainS, r.DrainObservedS)
	} else {
		row("drain", "not drained; gave up after %.3f s", r.DrainS)
	}
	if r.QueryErrors > 0 {
		row("order query errors", "%d", r.QueryErrors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range r.Violations {
		if _, err := fmt.Fprintf(w, "VIOLATION: %s\n", v); err != nil {
			return err
		}
	}
	for _, v := range r.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", v); err != nil {
			return err
		}
	}
	return nil
}

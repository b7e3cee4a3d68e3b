package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

// Results is everything one run measured; it is what bench/results.json holds.
type Results struct {
	Run           RunInfo              `json:"run"`
	FlashSale     *FlashSaleResult     `json:"flashsale,omitempty"`
	Cache         *CacheResult         `json:"cache,omitempty"`
	Loaders       *LoadersResult       `json:"loaders,omitempty"`
	Subscriptions *SubscriptionsResult `json:"subscriptions,omitempty"`
	Drain         *DrainResult         `json:"drain,omitempty"`
	Refusals      *RefusalsResult      `json:"refusals,omitempty"`
	// Processes is the flash sale with the API, the relay and each worker a process of its
	// own (Processes).
	Processes *FlashSaleResult `json:"processes,omitempty"`
	// Skipped says why a benchmark did not run; Errors why one failed.
	Skipped map[string]string `json:"skipped,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
}

// RunInfo says where and how the figures were measured.
type RunInfo struct {
	RunID     string    `json:"run_id"`
	Started   time.Time `json:"started"`
	DurationS float64   `json:"duration_s"`
	Mode      string    `json:"mode"`
	URL       string    `json:"url"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Only      []string  `json:"only,omitempty"`
	// LoadStart and LoadEnd are the machine's 1-minute load averages when the run started
	// and ended (Linux; empty elsewhere): above the CPU count, something else was competing.
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// loadAverage returns the 1-minute load average, or "" where /proc/loadavg does not exist.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Targets of the issue, and of the other benchmarks where the issue sets none.
const (
	TargetFloorRatio = 0.5  // attempts/s at least half the floor
	TargetP99Ms      = 50.0 // at concurrency 256
	TargetDrainS     = 2.0  // every accepted order PAID within 2 s of the last sale
	TargetCacheRatio = 3.0  // cached reads at least 3 times the uncached
)

// Row is one line of the table: a figure beside its baseline from the same run, their
// ratio (value ÷ baseline), the target if there is one, and whether it was met ("yes",
// "NO", or "" when there is no target).
type Row struct {
	Figure, Value, Baseline, Ratio, Target, OK string
}

// Rows turns the results into the table's rows, benchmark by benchmark.
func (r *Results) Rows() []Row {
	var rows []Row
	add := func(row Row) { rows = append(rows, row) }
	if f := r.FlashSale; f != nil {
		c := fmt.Sprintf("c=%d", f.Concurrency)
		add(Row{"flash sale: attempts/s (" + c + ")", num(f.AttemptsPerS), "floor { __typename }: " + num(f.FloorPerS),
			ratio(f.AttemptsPerS, f.FloorPerS) + spread(f.Rounds, "%.2f", func(r RoundFigures) float64 { return r.Ratio }),
			fmt.Sprintf("≥ %.2f× floor", TargetFloorRatio), ok(f.FloorPerS > 0 && f.AttemptsPerS >= TargetFloorRatio*f.FloorPerS)})
		add(Row{"flash sale: attempts/s vs ceiling", num(f.AttemptsPerS), "Lua reserve, no HTTP: " + num(f.CeilingPerS),
			ratio(f.AttemptsPerS, f.CeilingPerS), "", ""})
		add(Row{"flash sale: p50 ms", num(f.P50Ms), "floor p50: " + num(f.FloorP50Ms), ratio(f.P50Ms, f.FloorP50Ms), "", ""})
		add(Row{"flash sale: p99 ms (" + c + ")", num(f.P99Ms) + spread(f.Rounds, "%.0f", func(r RoundFigures) float64 { return r.P99Ms }),
			"floor p99: " + num(f.FloorP99Ms), ratio(f.P99Ms, f.FloorP99Ms),
			fmt.Sprintf("≤ %s ms", num(TargetP99Ms)), ok(f.Attempts > 0 && f.P99Ms <= TargetP99Ms)})
		add(Row{fmt.Sprintf("flash sale: units sold of %d", f.Quantity), fmt.Sprint(f.Sold), "seed lock sold: " + fmt.Sprint(f.SeedLockSold),
			ratio(float64(f.Sold), float64(f.SeedLockSold)), fmt.Sprintf("= %d", f.Quantity), ok(f.Sold == f.Quantity)})
		add(Row{"flash sale: refused while stock remained", fmt.Sprint(f.RefusedWithStock), "seed lock refused: " + fmt.Sprint(f.SeedLockRefused),
			ratio(float64(f.RefusedWithStock), float64(f.SeedLockRefused)), "0", ok(f.RefusedWithStock == 0)})
		add(Row{"flash sale: oversold units", fmt.Sprint(f.Oversold), "", "", "0", ok(f.Oversold == 0)})
		add(Row{"flash sale: lost orders", fmt.Sprint(f.Lost), "", "", "0", ok(f.Lost == 0)})
		drain := num(f.DrainS) + spread(f.Rounds, "%.2f", func(r RoundFigures) float64 { return r.DrainS })
		if !f.Drained {
			drain = "> " + drain + " (not drained)"
		}
		add(Row{"flash sale: s until all PAID after last sale", drain, "", "", fmt.Sprintf("≤ %s s", num(TargetDrainS)),
			ok(f.Drained && f.DrainS <= TargetDrainS)})
		if f.Drained {
			// The polls wait for the burst to end: this includes what was left of it.
			add(Row{"flash sale: s until the polls saw all PAID", num(f.DrainObservedS) +
				spread(f.Rounds, "%.2f", func(r RoundFigures) float64 { return r.DrainObservedS }), "", "", "", ""})
		}
	}
	if c := r.Cache; c != nil {
		row := Row{fmt.Sprintf("cache: product reads/s (c=%d)", c.Concurrency), num(c.CachedPerS), "cache off: " + num(c.UncachedPerS),
			ratio(c.CachedPerS, c.UncachedPerS), fmt.Sprintf("≥ %s× cache off", num(TargetCacheRatio)), ok(c.CachedPerS >= TargetCacheRatio*c.UncachedPerS)}
		if c.UncachedSkipped != "" {
			row.Baseline, row.Ratio, row.OK = "cache off: skipped", "", ""
		}
		add(row)
		if c.StoresOnlyPerS > 0 && c.UncachedSkipped == "" {
			add(Row{"cache: the stores' cache alone (no response cache)", num(c.StoresOnlyPerS), "cache off: " + num(c.UncachedPerS),
				ratio(c.StoresOnlyPerS, c.UncachedPerS), "", ""})
		}
		add(Row{"cache: product reads/s vs floor", num(c.CachedPerS), "floor { __typename }: " + num(c.FloorPerS),
			ratio(c.CachedPerS, c.FloorPerS), "", ""})
	}
	if l := r.Loaders; l != nil {
		bound := l.Shards * loaderLevels
		value := num(l.StatementsPerRequest) // the median request's
		if len(l.Requests) > 0 && slices.Min(l.Requests) != slices.Max(l.Requests) {
			value += fmt.Sprintf(" (%d–%d)", slices.Min(l.Requests), slices.Max(l.Requests))
		}
		add(Row{fmt.Sprintf("loaders: SQL statements per request (%d orders, nested)", l.OrdersInRequest), value,
			"batching off: " + num(l.StatementsWithoutLoaders), ratio(l.StatementsPerRequest, l.StatementsWithoutLoaders),
			fmt.Sprintf("≤ %d (1 per shard per level)", bound), ok(l.StatementsPerRequest > 0 && l.StatementsPerRequest <= float64(bound))})
	}
	if f := r.Refusals; f != nil {
		floor := "floor { __typename }: " + num(f.FloorCPUUs)
		add(Row{"refusals: CPU µs per RATE_LIMITED refusal", num(f.RateLimitedCPUUs), floor, ratio(f.RateLimitedCPUUs, f.FloorCPUUs), "", ""})
		add(Row{"refusals: CPU µs per worst abuse probe (" + f.Worst + ")", num(f.ProbesCPUUs[f.Worst]), floor,
			ratio(f.ProbesCPUUs[f.Worst], f.FloorCPUUs), "", ""})
	}
	if s := r.Subscriptions; s != nil {
		add(Row{"subscriptions: subscribers held by one API", fmt.Sprint(s.Subscribers), "opened: " + fmt.Sprint(s.Requested),
			ratio(float64(s.Subscribers), float64(s.Requested)), fmt.Sprintf("= %d", s.Requested), ok(s.Subscribers == s.Requested)})
		add(Row{"subscriptions: got the final 0", fmt.Sprint(s.GotFinal), "held: " + fmt.Sprint(s.Subscribers),
			ratio(float64(s.GotFinal), float64(s.Subscribers)), "= held", ok(s.Subscribers > 0 && s.GotFinal == s.Subscribers)})
		interval := "update interval: " + num(s.UpdateIntervalMs)
		add(Row{"subscriptions: final 0 p50 ms after last sale", num(s.FinalValueP50Ms), interval, ratio(s.FinalValueP50Ms, s.UpdateIntervalMs), "", ""})
		add(Row{"subscriptions: final 0 p99 ms after last sale", num(s.FinalValueP99Ms), interval, ratio(s.FinalValueP99Ms, s.UpdateIntervalMs), "", ""})
	}
	if d := r.Drain; d != nil {
		add(Row{fmt.Sprintf("payments: orders PAID/s, 1 worker (%d orders)", d.Orders), num(d.OneWorkerPerS),
			"gateway bound: " + num(d.GatewayBoundPerS), ratio(d.OneWorkerPerS, d.GatewayBoundPerS), "", ""})
		add(Row{fmt.Sprintf("payments: orders PAID/s, 2 workers (%d orders)", d.Orders), num(d.TwoWorkersPerS),
			"1 worker: " + num(d.OneWorkerPerS), ratio(d.TwoWorkersPerS, d.OneWorkerPerS), "", ""})
	}
	if p := r.Processes; p != nil {
		// Each figure beside the same figure in one process, when the flash sale ran too.
		beside := func(v, inProcess float64) (string, string) {
			if r.FlashSale == nil {
				return "", ""
			}
			return "one process: " + num(inProcess), ratio(v, inProcess)
		}
		var one FlashSaleResult
		if r.FlashSale != nil {
			one = *r.FlashSale
		}
		b, rt := beside(p.AttemptsPerS, one.AttemptsPerS)
		add(Row{"as deployed: flash sale attempts/s (separate processes)", num(p.AttemptsPerS), b, rt, "", ""})
		b, rt = beside(p.P99Ms, one.P99Ms)
		add(Row{"as deployed: flash sale p99 ms", num(p.P99Ms) + spread(p.Rounds, "%.0f", func(r RoundFigures) float64 { return r.P99Ms }),
			b, rt, fmt.Sprintf("≤ %s ms", num(TargetP99Ms)), ok(p.Attempts > 0 && p.P99Ms <= TargetP99Ms)})
		add(Row{"as deployed: units sold / oversold / lost", fmt.Sprintf("%d / %d / %d", p.Sold, p.Oversold, p.Lost), "", "",
			fmt.Sprintf("%d / 0 / 0", p.Quantity), ok(p.Sold == p.Quantity && p.Oversold == 0 && p.Lost == 0)})
		drain := num(p.DrainObservedS)
		if !p.Drained {
			drain = "> " + drain + " (not drained)"
		}
		b, rt = beside(p.DrainObservedS, one.DrainObservedS)
		add(Row{"as deployed: s until the polls saw all PAID", drain, b, rt, "", ok(p.Drained)})
	}
	return rows
}

// Missed returns the figures whose target was not met.
func (r *Results) Missed() []string {
	var out []string
	for _, row := range r.Rows() {
		if row.OK == "NO" {
			out = append(out, row.Figure)
		}
	}
	return out
}

// WriteTable writes the rows as a table with the columns figure | value | baseline | ratio
// | target | ok, then what was skipped and what failed.
func (r *Results) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "flash-sale benchmarks, %s, %d CPUs, %s, run %s (%.0f s)", r.Run.Mode, r.Run.CPUs, r.Run.GoVersion, r.Run.RunID, r.Run.DurationS)
	if r.Run.LoadStart != "" {
		fmt.Fprintf(w, ", load average %s at the start, %s at the end", r.Run.LoadStart, r.Run.LoadEnd)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	line := func(cells ...string) { fmt.Fprintln(tw, " "+strings.Join(cells, "\t ")+"\t") }
	line("figure", "value", "baseline", "ratio", "target", "ok")
	line("------", "-----", "--------", "-----", "------", "--")
	for _, row := range r.Rows() {
		line(row.Figure, row.Value, row.Baseline, row.Ratio, row.Target, row.OK)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f := r.FlashSale; f != nil && f.RequestShapes != "" {
		fmt.Fprintf(w, "flash sale: the burst and its floor send requests as %s, in turn\n", f.RequestShapes)
	}
	if c := r.Cache; c != nil && c.RequestShapes != "" {
		fmt.Fprintf(w, "cache: the reads and their floor send requests as %s, in turn\n", c.RequestShapes)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Skipped)) {
		fmt.Fprintf(w, "skipped %s: %s\n", name, r.Skipped[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "FAILED %s: %s\n", name, r.Errors[name])
	}
	if f := r.FlashSale; f != nil {
		for _, v := range f.Violations {
			fmt.Fprintf(w, "VIOLATION flash sale: %s\n", v)
		}
		for _, v := range f.Warnings {
			fmt.Fprintf(w, "warning flash sale: %s\n", v)
		}
	}
	if f := r.FlashSale; f != nil && f.CPU != nil {
		fmt.Fprintln(w, "flash sale: where the CPU went in the burst (core-seconds; this process is the load generator, and the API and workers when in-process):")
		for _, span := range []struct {
			name string
			u    *CPUUse
		}{{"selling", f.CPU.SellOut}, {"refusing", f.CPU.AfterSellOut}, {"whole burst", f.CPU.Burst}} {
			if u := span.u; u != nil {
				fmt.Fprintf(w, "  %-11s %5.2f s: machine %.2f = this process %.2f + PostgreSQL %.2f + RabbitMQ %.2f + Redis %.2f + other %.2f\n",
					span.name, u.Seconds, u.Busy, u.ThisProcess, u.Postgres, u.RabbitMQ, u.Redis, u.Other)
			}
		}
	}
	if f := r.FlashSale; f != nil && f.Steps != nil {
		st := f.Steps
		fmt.Fprintf(w, "flash sale: inside the checkout, the %d accepted orders took their units in Redis in p50 %.1f ms (p99 %.1f), were recorded in the ledger in p50 %.1f ms (p99 %.1f) and written to PostgreSQL in p50 %.1f ms (p99 %.1f); they answered in p50 %.1f ms (p99 %.1f)\n",
			st.Orders, st.ReserveP50Ms, st.ReserveP99Ms, st.RecordP50Ms, st.RecordP99Ms, st.WriteP50Ms, st.WriteP99Ms, f.AcceptedP50Ms, f.AcceptedP99Ms)
	}
	if f := r.FlashSale; f != nil && f.Burst != nil {
		sl := f.Burst.Slow
		fmt.Fprintf(w, "flash sale: in the median round %d attempts took over %.0f ms: %d began in the burst's first %.0f ms, %d later while units remained, %d after the sell-out\n",
			sl.FirstWave+sl.WhileSelling+sl.AfterSellOut, sl.OverMs, sl.FirstWave, ms(loadgen.FirstWave), sl.WhileSelling, sl.AfterSellOut)
	}
	if s := r.Subscriptions; s != nil && len(s.OrderFailures) > 0 {
		fmt.Fprintf(w, "warning subscriptions: order attempts failed while selling out under the subscribers (each retried): %v\n", s.OrderFailures)
	}
	_, err := fmt.Fprintf(w, "ratio = value ÷ baseline; baselines are measured in the same run on the same machine.\n")
	return err
}

// WriteJSON writes the results to path, creating its directory.
func (r *Results) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// num formats a figure with three significant digits or more: 12345, 123, 12.3, 1.23.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// ratio formats value ÷ baseline, or "" without a baseline.
func ratio(value, baseline float64) string {
	if baseline == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", value/baseline)
}

func ok(met bool) string {
	if met {
		return "yes"
	}
	return "NO"
}

package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample is a run with every benchmark, meeting some targets and missing others.
func sample() *Results {
	return &Results{
		Run: RunInfo{RunID: "bench-1", Mode: "in-process stack", CPUs: 2, GoVersion: "go1.26", DurationS: 120},
		FlashSale: &FlashSaleResult{
			Attempts: 20000, Concurrency: 256, AttemptsPerS: 6000, FloorPerS: 10000, CeilingPerS: 40000,
			P50Ms: 30, P99Ms: 120, FloorP50Ms: 20, FloorP99Ms: 60, Quantity: 1000, Sold: 1000,
			DrainS: 1.5, Drained: true, SeedLockSold: 250, SeedLockRefused: 9000,
		},
		Cache:         &CacheResult{Concurrency: 64, CachedPerS: 9000, UncachedPerS: 6000, FloorPerS: 12000},
		Loaders:       &LoadersResult{Shards: 4, OrdersInRequest: 100, StatementsPerRequest: 16, StatementsWithoutLoaders: 300},
		Subscriptions: &SubscriptionsResult{Requested: 100, Subscribers: 100, GotFinal: 99, FinalValueP50Ms: 40, FinalValueP99Ms: 90, UpdateIntervalMs: 100},
		Drain:         &DrainResult{Orders: 2000, OneWorkerPerS: 800, TwoWorkersPerS: 1200, GatewayBoundPerS: 1600},
		Skipped:       map[string]string{},
		Errors:        map[string]string{},
	}
}

func TestRows(t *testing.T) {
	t.Parallel()
	rows := map[string]Row{}
	for _, r := range sample().Rows() {
		rows[r.Figure] = r
	}
	tests := []struct {
		figure                 string
		value, baseline, ratio string
		ok                     string
	}{
		{"flash sale: attempts/s (c=256)", "6000", "floor { __typename }: 10000", "0.60×", "yes"},
		{"flash sale: attempts/s vs ceiling", "6000", "Lua reserve, no HTTP: 40000", "0.15×", ""},
		{"flash sale: p99 ms (c=256)", "120", "floor p99: 60", "2.00×", "NO"},
		{"flash sale: units sold of 1000", "1000", "seed lock sold: 250", "4.00×", "yes"},
		{"flash sale: refused while stock remained", "0", "seed lock refused: 9000", "0.00×", "yes"},
		{"flash sale: s until all PAID after last sale", "1.50", "", "", "yes"},
		{"cache: product reads/s (c=64)", "9000", "cache off: 6000", "1.50×", "NO"},
		{"cache: product reads/s vs floor", "9000", "floor { __typename }: 12000", "0.75×", ""},
		{"loaders: SQL statements per request (100 orders, nested)", "16", "batching off: 300", "0.05×", "yes"},
		{"subscriptions: subscribers held by one API", "100", "opened: 100", "1.00×", "yes"},
		{"subscriptions: got the final 0", "99", "held: 100", "0.99×", "NO"},
		{"payments: orders PAID/s, 2 workers (2000 orders)", "1200", "1 worker: 800", "1.50×", ""},
	}
	for _, tt := range tests {
		got, ok := rows[tt.figure]
		if !ok {
			t.Errorf("no row %q among %d rows", tt.figure, len(rows))
			continue
		}
		if got.Value != tt.value || got.Baseline != tt.baseline || got.Ratio != tt.ratio || got.OK != tt.ok {
			t.Errorf("row %q = %q | %q | %q | ok %q; want %q | %q | %q | ok %q",
				tt.figure, got.Value, got.Baseline, got.Ratio, got.OK, tt.value, tt.baseline, tt.ratio, tt.ok)
		}
	}
	if got, want := len(sample().Missed()), 3; got != want {
		t.Errorf("Missed() = %q; want %d figures", sample().Missed(), want)
	}
}

func TestRowsOfAPartialRun(t *testing.T) {
	t.Parallel()
	r := &Results{
		Cache:   &CacheResult{Concurrency: 64, CachedPerS: 9000, UncachedSkipped: "needs the in-process stack"},
		Skipped: map[string]string{"loaders": "needs the in-process stack (-url given)"},
		Errors:  map[string]string{"drain": "boom"},
	}
	rows := r.Rows()
	if len(rows) != 2 || rows[0].Baseline != "cache off: skipped" || rows[0].OK != "" || rows[0].Ratio != "" {
		t.Fatalf("rows = %+v; want the cache rows alone, the first with its baseline skipped and no verdict", rows)
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	for _, want := range []string{"skipped loaders: needs the in-process stack (-url given)", "FAILED drain: boom"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteTableAlignsColumns(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sample().WriteTable(&b); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	var table []string
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Count(line, "|") == 6 {
			table = append(table, line)
		}
	}
	if len(table) != len(sample().Rows())+2 {
		t.Fatalf("%d table lines; want a header, a rule and %d rows:\n%s", len(table), len(sample().Rows()), b.String())
	}
	header := strings.Fields(strings.ReplaceAll(table[0], "|", " "))
	if want := []string{"figure", "value", "baseline", "ratio", "target", "ok"}; strings.Join(header, ",") != strings.Join(want, ",") {
		t.Errorf("header = %q; want %q", header, want)
	}
	// Every line has its column separators at the same offsets.
	offsets := func(s string) []int {
		var out []int
		for i, r := range []rune(s) {
			if r == '|' {
				out = append(out, i)
			}
		}
		return out
	}
	want := offsets(table[0])
	for _, line := range table[1:] {
		if got := offsets(line); len(got) != len(want) || got[0] != want[0] || got[5] != want[5] {
			t.Errorf("line %q has separators at %v; want %v", line, got, want)
		}
	}
}

func TestWriteJSONHasTheIssuesFields(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bench", "results.json")
	if err := sample().WriteJSON(path); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := map[string][]string{
		"flashsale": {"attempts_per_s", "floor_per_s", "ceiling_per_s", "p50_ms", "p99_ms", "quantity", "sold",
			"oversold", "lost", "drain_s", "seed_lock_sold"},
		"cache":         {"cached_per_s", "uncached_per_s"},
		"loaders":       {"shards", "orders_in_request", "statements_per_request", "statements_without_loaders"},
		"subscriptions": {"subscribers", "final_value_p50_ms", "final_value_p99_ms"},
	}
	for section, keys := range want {
		for _, k := range keys {
			if _, ok := got[section][k]; !ok {
				t.Errorf("results.json lacks %s.%s", section, k)
			}
		}
	}
}

func TestNumAndRatio(t *testing.T) {
	t.Parallel()
	nums := []struct {
		in   float64
		want string
	}{{12345.6, "12346"}, {123.4, "123"}, {12.34, "12.3"}, {1.234, "1.23"}, {0, "0"}, {3, "3"}, {0.5, "0.50"}}
	for _, tt := range nums {
		if got := num(tt.in); got != tt.want {
			t.Errorf("num(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
	ratios := []struct {
		value, baseline float64
		want            string
	}{{6000, 10000, "0.60×"}, {300, 16, "18.75×"}, {5, 0, ""}}
	for _, tt := range ratios {
		if got := ratio(tt.value, tt.baseline); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q; want %q", tt.value, tt.baseline, got, tt.want)
		}
	}
}

// The loaders' figure is the median request's; a request whose level split shows as the range.
func TestLoadersRowShowsTheMedianAndTheRange(t *testing.T) {
	t.Parallel()
	if got := upperMedian([]float64{17, 16, 16, 19, 16}); got != 16 {
		t.Errorf("upperMedian = %v, want 16", got)
	}
	r := sample()
	r.Loaders.Requests = []int{16, 17, 16, 16, 16}
	for _, row := range r.Rows() {
		if strings.HasPrefix(row.Figure, "loaders: SQL statements") {
			if row.Value != "16 (16–17)" || row.OK != "yes" {
				t.Errorf("loaders row = %q, ok %q; want \"16 (16–17)\", yes", row.Value, row.OK)
			}
			return
		}
	}
	t.Error("no loaders row")
}

package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/flashsale/flashsale/internal/apitest"
)

// ruleFile is Prometheus's rule file format, decoded strictly: a misspelt field fails.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is what of a Grafana dashboard names metrics.
type dashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Every alert rule and dashboard panel in deploy/monitoring parses, and every metric it
// names is one that the API or a worker registers (with the whole stack running, as in `make
// run`, so that the workers' metrics are there too).
func TestMonitoringNamesRegisteredMetrics(t *testing.T) {
	t.Parallel()
	exprs := map[string]string{} // by where it is
	for where, e := range alertExprs(t, "../deploy/monitoring/alerts.yaml") {
		exprs[where] = e
	}
	for where, e := range dashboardExprs(t, "../deploy/monitoring/dashboard.json") {
		exprs[where] = e
	}
	named := map[string][]string{} // metric -> where
	p := parser.NewParser(parser.Options{})
	for where, e := range exprs {
		expr, err := p.ParseExpr(e)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, e, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				named[vs.Name] = append(named[vs.Name], where)
			}
			return nil
		})
	}
	if len(named) < 15 {
		t.Fatalf("the rules and the dashboard name %d metrics; the parsing lost some", len(named))
	}

	s := apitest.StartStack(t, withLimits(unrefusing())) // rate limits register theirs when on
	var missing []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// The workers register their metrics as they start.
		registered := registeredNames(s.API.Registry)
		missing = missing[:0]
		for name := range named {
			if !registered[name] && !registered[histogramOf(name)] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	slices.Sort(missing)
	for _, name := range missing {
		t.Errorf("%s is named by %v but no process registers it", name, named[name])
	}
}

// registeredNames are the names of every metric the registry's collectors describe.
func registeredNames(reg *prometheus.Registry) map[string]bool {
	descs := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// histogramOf is the histogram (or summary) a series name belongs to: name less _bucket, _sum
// or _count.
func histogramOf(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	exprs := map[string]string{}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: a group without a name or rules: %+v", path, g)
		}
		for _, r := range g.Rules {
			where := path + ": " + r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule must be an alert or a record, not both or neither", where)
			}
			if alerts[r.Alert+r.Record] {
				t.Errorf("%s: named twice", where)
			}
			alerts[r.Alert+r.Record] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", where, err)
				}
			}
			if r.Alert != "" {
				if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" && sev != "info" {
					t.Errorf("%s: severity %q, want critical, warning or info", where, sev)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: needs a summary and a description", where)
				}
			}
			exprs[where] = r.Expr
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return exprs
}

func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	exprs := map[string]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for i, target := range p.Targets {
			exprs[path+": "+p.Title+" #"+string(rune('A'+i))] = target.Expr
		}
	}
	return exprs
}

// flashsale_graphql_subscriptions_open counts each subscription from its start to its end,
// whether the client stops it or closes the websocket.
func TestOpenSubscriptionsAreCounted(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Watched", 5, 1)
	const open = "flashsale_graphql_subscriptions_open"
	waitMetric := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := metric(t, s, open)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %d, want %d", open, got, want)
			}
		}
	}
	waitMetric(0)
	ws := s.DialWS(t, "")
	first := ws.MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	second := ws.MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	for _, sub := range []*apitest.Subscription{first, second} {
		if _, err := sub.Next(t.Context()); err != nil { // the current stock: running
			t.Fatalf("first message: %v", err)
		}
	}
	waitMetric(2)
	if err := first.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitMetric(1)
	ws.Close()
	waitMetric(0)
}

package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/apitest"
)

func TestHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)

	if r := s.Get(t, "/healthz"); r.Status != http.StatusOK {
		t.Errorf("/healthz: got status %d, want 200", r.Status)
	}

	r := s.Get(t, "/readyz")
	if r.Status != http.StatusOK {
		t.Errorf("/readyz: got status %d, want 200\n%s", r.Status, r.Body)
	}
	var ready map[string]string
	if err := json.Unmarshal(r.Body, &ready); err != nil {
		t.Fatalf("/readyz: body %q is not a JSON object of strings: %v", r.Body, err)
	}
	if got := ready["postgres"]; got != "ok" {
		t.Errorf("/readyz: postgres is %q, want \"ok\" (body %s)", got, r.Body)
	}
	for dep, status := range ready {
		if status != "ok" {
			t.Errorf("/readyz: %s is %q, want \"ok\"", dep, status)
		}
	}

	s.Do(t, "", `query Anything { me { id } }`, nil).MustData(t, &struct{}{})
	s.Do(t, "", `{ products { edges { cursor } } }`, nil).MustData(t, &struct{}{})
	s.Do(t, "", `{ nope }`, nil)
	m := s.Get(t, "/metrics")
	if m.Status != http.StatusOK {
		t.Fatalf("/metrics: got status %d, want 200", m.Status)
	}
	for _, want := range []string{
		`flashsale_graphql_requests_total{operation="query:me",outcome="ok"} 1`,
		`flashsale_graphql_requests_total{operation="query:products",outcome="ok"} 1`,
		`flashsale_graphql_request_duration_seconds_count{operation="query:me"} 1`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(m.Body), "Anything") {
		t.Errorf("/metrics shows the client-chosen operation name; labels must not grow with clients")
	}
}

package graph

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// /readyz answers 503 when a check fails outright, 200 when every failure is Degraded, and
// names every dependency's status either way.
func TestReadinessFailsOnlyOnFatalChecks(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	degraded := func(context.Context) error { return Degraded(errors.New("shard 1 down")) }
	down := func(context.Context) error { return errors.New("every shard down") }
	tests := []struct {
		name   string
		checks map[string]Check
		code   int
		want   map[string]string
	}{
		{"all ok", map[string]Check{"a": ok, "b": ok}, http.StatusOK, map[string]string{"a": "ok", "b": "ok"}},
		{"degraded", map[string]Check{"a": ok, "b": degraded}, http.StatusOK,
			map[string]string{"a": "ok", "b": "degraded: shard 1 down"}},
		{"fatal", map[string]Check{"a": degraded, "b": down}, http.StatusServiceUnavailable,
			map[string]string{"a": "degraded: shard 1 down", "b": "every shard down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			OpsMux(tt.checks, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d", rec.Code, tt.code)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("%s = %q, want %q", k, got[k], w)
				}
			}
		})
	}
	if Degraded(nil) != nil {
		t.Error("Degraded(nil) is not nil")
	}
}

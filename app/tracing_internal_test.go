package app

import (
	"context"
	"testing"
)

// Tracing is installed only when an OTLP endpoint is set; without one there is no provider,
// and so no middleware, tracer or hook.
func TestTracerProviderOnlyWithAnEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"unset", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp, err := newTracerProvider(context.Background(), func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("newTracerProvider: %v", err)
			}
			if got := tp != nil; got != tt.want {
				t.Fatalf("provider installed = %v, want %v", got, tt.want)
			}
			if tp != nil {
				if err := tp.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			}
		})
	}
}

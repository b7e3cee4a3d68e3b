package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
)

func TestContextHandlerAddsRequestAndTraceIDs(t *testing.T) {
	t.Parallel()
	traceID := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	spanID := trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	traced := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	tests := []struct {
		name string
		ctx  context.Context
		want map[string]any // absent keys: nil
	}{
		{"no request", context.Background(), map[string]any{"request_id": nil, "trace_id": nil, "span_id": nil}},
		{"request", flashsale.NewContextWithRequestID(context.Background(), "req-1"),
			map[string]any{"request_id": "req-1", "trace_id": nil}},
		{"traced request", flashsale.NewContextWithRequestID(traced, "req-2"),
			map[string]any{"request_id": "req-2", "trace_id": traceID.String(), "span_id": spanID.String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := slog.New(app.ContextHandler{slog.NewJSONHandler(&buf, nil)}).With("worker", "w")
			log.InfoContext(tt.ctx, "hello", "k", "v")
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			if got["worker"] != "w" || got["k"] != "v" {
				t.Errorf("line %v lost its own attributes", got)
			}
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %v, want %v (line %s)", k, got[k], want, buf.String())
				}
			}
		})
	}
}

package app

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
)

// ContextHandler adds to each record logged with a context the request id and the trace and
// span ids found in it, so that an operator can go from a log line to the request's other
// lines and to its trace.
type ContextHandler struct{ slog.Handler }

// Handle adds request_id, trace_id and span_id when ctx has them.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := flashsale.RequestIDFromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the ids on the derived logger.
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the ids on the derived logger.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}

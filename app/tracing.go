package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/stores/postgres"
)

// tracerName names the spans this package starts: the relay's and the workers'.
const tracerName = "github.com/flashsale/flashsale/app"

// HeaderTraceParent is the W3C trace-context key of the propagation carriers. An order event
// carries it through RabbitMQ and Kafka under the same name (rabbitmq.HeaderTraceParent,
// kafka.HeaderTraceParent), so that the workers continue the trace of the request that
// placed the order.
const HeaderTraceParent = "traceparent"

// tracing is W3C trace context: what every hop of an order's trace reads and writes.
var tracing = propagation.TraceContext{}

// newTracerProvider returns the OTLP exporter's tracer provider when
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and nil, for no
// tracing at all, when it is not. The exporter reads the rest of the OTEL_EXPORTER_OTLP_*
// settings itself; the service is named by OTEL_SERVICE_NAME, else after the binary.
func newTracerProvider(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName("flashsale-"+filepath.Base(os.Args[0]))),
		resource.Default(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, err
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// openTracing sets d.Tracer to tracer (Options.Tracer) or to the environment's, and
// instruments what OpenDeps is about to open. Without tracing it does nothing at all: no hook
// on a statement, command or request.
func (d *Deps) openTracing(ctx context.Context, tracer trace.TracerProvider, dbOpts *postgres.Options) error {
	d.Tracer = tracer
	if d.Tracer == nil {
		tp, err := newTracerProvider(ctx, os.Getenv)
		if err != nil {
			return err
		}
		if tp == nil {
			return nil
		}
		d.Tracer, d.tracerShutdown = tp, tp.Shutdown
	}
	tp := d.Tracer
	given := dbOpts.Tracer
	dbOpts.Tracer = func(shard int) pgx.QueryTracer {
		t := otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithTrimSQLInSpanName(),
			otelpgx.WithTracerAttributes(attribute.Int("flashsale.shard", shard)))
		if given != nil {
			if g := given(shard); g != nil {
				return multitracer.New(t, g)
			}
		}
		return t
	}
	return nil
}

// traceRedis adds a span for each Redis command and pipeline, when tracing is on.
func (d *Deps) traceRedis(client goredis.UniversalClient) error {
	if d.Tracer == nil {
		return nil
	}
	// The statements are the Lua scripts' arguments and cached values: the command name is
	// enough to follow an order.
	return redisotel.InstrumentTracing(client, redisotel.WithTracerProvider(d.Tracer), redisotel.WithDBStatement(false))
}

// closeTracing sends the spans not yet exported.
func (d *Deps) closeTracing() {
	if d.tracerShutdown != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := d.tracerShutdown(ctx); err != nil {
			d.Log.Warn("export the last spans", "err", err)
		}
	}
}

// relaySpans starts a producer span for each outbox row being sent to dest, a child of the
// request that wrote the row, and returns the trace context each message carries and a
// function that ends the spans with the send's outcome. Without tracing the rows' stored
// trace context goes on unchanged, so that workers tracing in other processes still continue
// the request's trace.
func (d *Deps) relaySpans(ctx context.Context, dest string, rows []flashsale.OutboxEvent) (parents []string, end func(error)) {
	parents = make([]string, len(rows))
	if d.Tracer == nil {
		for i, r := range rows {
			parents[i] = r.TraceParent
		}
		return parents, func(error) {}
	}
	tracer := d.Tracer.Tracer(tracerName)
	spans := make([]trace.Span, len(rows))
	for i, r := range rows {
		parent := tracing.Extract(ctx, propagation.MapCarrier{HeaderTraceParent: r.TraceParent})
		sctx, span := tracer.Start(parent, "send "+r.Type,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithLinks(trace.LinkFromContext(ctx)), // the relay's claim
			trace.WithAttributes(attribute.String("messaging.destination.name", dest), attribute.String("messaging.message.id", r.EventID)))
		spans[i] = span
		carrier := propagation.MapCarrier{}
		tracing.Inject(sctx, carrier)
		parents[i] = carrier[HeaderTraceParent]
	}
	return parents, func(err error) {
		for _, s := range spans {
			if err != nil {
				s.SetStatus(codes.Error, err.Error())
			}
			s.End()
		}
	}
}

// consumerSpan starts the span of a worker handling one message whose trace context is
// parent (empty: a trace of its own). It returns ctx unchanged and a no-op without tracing.
func (d *Deps) consumerSpan(ctx context.Context, worker, name, parent string) (context.Context, func(error)) {
	if d.Tracer == nil {
		return ctx, func(error) {}
	}
	if parent != "" {
		ctx = tracing.Extract(ctx, propagation.MapCarrier{HeaderTraceParent: parent})
	}
	ctx, span := d.Tracer.Tracer(tracerName).Start(ctx, worker+" "+name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("flashsale.worker", worker)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// batchSpan starts the span of a worker handling a batch of messages, linked to the trace of
// each message that carries one.
func (d *Deps) batchSpan(ctx context.Context, worker, name string, parents []string) (context.Context, func(error)) {
	if d.Tracer == nil {
		return ctx, func(error) {}
	}
	links := make([]trace.Link, 0, len(parents))
	for _, p := range parents {
		if sc := trace.SpanContextFromContext(tracing.Extract(ctx, propagation.MapCarrier{HeaderTraceParent: p})); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := d.Tracer.Tracer(tracerName).Start(ctx, worker+" "+name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attribute.String("flashsale.worker", worker), attribute.Int("messaging.batch.message_count", len(parents))))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

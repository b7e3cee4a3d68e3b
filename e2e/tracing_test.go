package e2e_test

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// One flash-sale order is one trace: from the HTTP request through placeFlashSaleOrder, its
// Redis reservation and PostgreSQL statements, the outbox relay, RabbitMQ, to its charge in
// the payment worker; the Kafka copy reaches analytics as a link.
func TestOneTraceFromOrderToCharge(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	s := apitest.StartStack(t, apitest.WithOptions(func(o *app.Options) { o.Tracer = tp }))

	saleID, _ := activeSale(t, s, "Traced", 5, 1)
	buyer := customer(t, s, "traced@example.test")
	orderID := placeOne(t, s, buyer, saleID)

	var charge tracetest.SpanStub
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, ok := find(spans.GetSpans(), func(s tracetest.SpanStub) bool {
			return s.Name == "charge order" && attr(s, "flashsale.order_id") == orderID
		}); ok {
			charge = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span charged order %s within 30s; spans: %v", orderID, names(spans.GetSpans()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := attr(charge, "flashsale.payment_outcome"), "approved"; got != want {
		t.Errorf("charge span's outcome = %q, want %q", got, want)
	}

	// The charge's ancestors, nearest first, must lead back to the request. A span is
	// exported when it ends, and the relay's ends once the broker confirmed, which can be
	// after the worker charged: wait for the chain to reach a root.
	var (
		all   tracetest.SpanStubs
		byID  map[trace.SpanID]tracetest.SpanStub
		chain []string
	)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		all = spans.GetSpans()
		byID = map[trace.SpanID]tracetest.SpanStub{}
		for _, s := range all {
			if s.SpanContext.TraceID() == charge.SpanContext.TraceID() {
				byID[s.SpanContext.SpanID()] = s
			}
		}
		chain = chain[:0]
		root := charge
		for s, ok := charge, true; ok; s, ok = byID[s.Parent.SpanID()] {
			chain = append(chain, s.Name)
			root = s
		}
		if !root.Parent.IsValid() || time.Now().After(deadline) {
			break
		}
	}
	path := strings.Join(chain, " < ")
	for _, want := range []string{"payments order.placed", "send order.placed", "Mutation/placeFlashSaleOrder", "mutation:placeFlashSaleOrder", "POST /query"} {
		if !strings.Contains(path, want) {
			t.Errorf("the charge's ancestors are %q, want %q among them", path, want)
		}
	}
	if root := chain[len(chain)-1]; root != "POST /query" {
		t.Errorf("the trace's root is %q, want the HTTP request", root)
	}

	// The request's own work is in the trace: Redis commands and PostgreSQL statements.
	var redis, sql int
	for _, s := range byID {
		switch {
		case attr(s, "db.system") == "redis" || attr(s, "db.system.name") == "redis":
			redis++
		case attr(s, "db.system") == "postgresql" || attr(s, "db.system.name") == "postgresql":
			sql++
		}
	}
	if redis == 0 || sql == 0 {
		t.Errorf("the order's trace has %d Redis and %d PostgreSQL spans, want some of each; spans: %v", redis, sql, names(all))
	}
	if _, ok := find(all, func(s tracetest.SpanStub) bool {
		if !strings.HasPrefix(s.Name, "analytics ") {
			return false
		}
		for _, l := range s.Links {
			if l.SpanContext.TraceID() == charge.SpanContext.TraceID() {
				return true
			}
		}
		return false
	}); !ok {
		waitForAnalyticsLink(t, spans, charge.SpanContext.TraceID())
	}
}

// waitForAnalyticsLink waits for the analytics worker's span that links to the order's trace:
// Kafka's copy of the event may arrive after the charge.
func waitForAnalyticsLink(t *testing.T, spans *tracetest.InMemoryExporter, id trace.TraceID) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, ok := find(spans.GetSpans(), func(s tracetest.SpanStub) bool {
			for _, l := range s.Links {
				if strings.HasPrefix(s.Name, "analytics ") && l.SpanContext.TraceID() == id {
					return true
				}
			}
			return false
		}); ok {
			return
		}
	}
	t.Errorf("no analytics span links to the order's trace within 30s")
}

func find(spans tracetest.SpanStubs, match func(tracetest.SpanStub) bool) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if match(s) {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

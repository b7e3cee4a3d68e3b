package graph

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
)

// metrics counts and times GraphQL operations. The label is the operation's kind and root
// fields ("mutation:placeFlashSaleOrder"), not its client-chosen name, so that clients cannot
// grow the label set without bound.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// subscriptions counts the subscriptions open on this process, open holds them by
	// operation (countOpen).
	subscriptions prometheus.Gauge
	open          sync.Map
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_graphql_requests_total",
			Help: "GraphQL operations by root fields and outcome.",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flashsale_graphql_request_duration_seconds",
			Help:    "GraphQL operation latency by root fields.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
	}
	m.subscriptions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flashsale_graphql_subscriptions_open",
		Help: "GraphQL subscriptions open on this process.",
	})
	reg.MustRegister(m.requests, m.latency, m.subscriptions)
	return m
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = (*metrics)(nil)

func (*metrics) ExtensionName() string                   { return "Metrics" }
func (*metrics) Validate(graphql.ExecutableSchema) error { return nil }

func (m *metrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
		m.countOpen(ctx, oc)
		return next(ctx) // a subscription's "latency" is its lifetime: counted as open instead
	}
	start := time.Now()
	resp := next(ctx)
	op := operationLabel(oc)
	outcome := "ok"
	if resp == nil || len(resp.Errors) > 0 {
		outcome = "error"
	}
	m.observe(op, outcome, time.Since(start))
	return resp
}

// countOpen counts a subscription as open from the first wait for its first message until its
// context ends, which the websocket transport does when the subscription completes, is
// stopped or its connection closes. Its later messages find it counted already. Only
// subscriptions pay for this: an operation interceptor would cost every request a closure.
func (m *metrics) countOpen(ctx context.Context, oc *graphql.OperationContext) {
	if _, counted := m.open.LoadOrStore(oc, struct{}{}); counted {
		return
	}
	m.subscriptions.Inc()
	context.AfterFunc(ctx, func() {
		m.open.Delete(oc)
		m.subscriptions.Dec()
	})
}

// observe counts one operation; the response cache calls it for the requests it answers.
func (m *metrics) observe(op, outcome string, d time.Duration) {
	m.requests.WithLabelValues(op, outcome).Inc()
	m.latency.WithLabelValues(op).Observe(d.Seconds())
}

func operationLabel(oc *graphql.OperationContext) string {
	if oc.Operation == nil {
		return "invalid"
	}
	var fields []string
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, nil) {
		fields = append(fields, f.Name)
	}
	sort.Strings(fields)
	fields = slices.Compact(fields)
	if len(fields) > 4 {
		fields = append(fields[:4], "…")
	}
	return string(oc.Operation.Operation) + ":" + strings.Join(fields, ",")
}

// registerCacheMetrics exposes the size of the caches of parsed and persisted queries, which
// clients fill with the documents they send: operators size QUERY_CACHE_BYTES and
// PERSISTED_QUERIES_BYTES by them.
func registerCacheMetrics(reg prometheus.Registerer, parsed *byteCache[*ast.QueryDocument], persisted *byteCache[string]) {
	gauge := func(name, help string, f func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		gauge("flashsale_graphql_query_cache_bytes", "Estimated bytes of the parsed-query cache.", parsed.Bytes),
		gauge("flashsale_graphql_query_cache_entries", "Documents in the parsed-query cache.", parsed.Len),
		gauge("flashsale_graphql_persisted_queries_bytes", "Bytes of the automatic persisted queries kept.", persisted.Bytes),
		gauge("flashsale_graphql_persisted_queries_entries", "Automatic persisted queries kept.", persisted.Len),
	)
}

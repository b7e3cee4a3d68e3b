package app

import (
	"time"

	"github.com/flashsale/flashsale/stores/postgres"
	"go.opentelemetry.io/otel/trace"
)

// Options are what the code that starts a process chooses, not its operator (Config): what
// tests observe or shorten, and the switches that turn a mechanism off, for the benchmarks'
// baselines (cmd/bench). The zero value is what production runs.
type Options struct {
	DB postgres.Options
	// Tracer, when set, traces the process instead of the exporter that
	// OTEL_EXPORTER_OTLP_ENDPOINT turns on (tests give an in-memory one).
	Tracer trace.TracerProvider
	// OrphanGrace overrides how old a hold without an order must be before reconciliation
	// returns its units (checkout.Config.OrphanGrace; zero keeps its default): fault drills
	// shorten it so that the units a crash left held come back while the test runs.
	OrphanGrace time.Duration
	// Clock, when set, is the checkout's clock instead of time.Now: drills of replicas whose
	// clocks disagree.
	Clock func() time.Time
	// NoCache reads PostgreSQL directly, without the Redis read cache and its local copies.
	// Such a process must not write data that cached processes read: it would not tell them.
	NoCache bool
	// NoBatching gives every dataloader key its own batch.
	NoBatching bool
	// NoResponseCache keeps the stores' cache but executes every GraphQL request.
	NoResponseCache bool
	// NoLocalCache keeps the Redis read cache but no local copies of its entries in memory:
	// every read of a product, sale or user goes to Redis.
	NoLocalCache bool
	// NoSoldOutFastPath turns off the sold-out fast path (perf/soldout): the checkout asks
	// Redis for every order attempt, and GraphQL answers every order.
	NoSoldOutFastPath bool
	// NoBurstScheduling runs the workers in this process as if the API were elsewhere: they
	// never wait for a burst of API requests, the relay never holds events, and the garbage
	// collector's pace is never changed (perf/burst).
	NoBurstScheduling bool
}

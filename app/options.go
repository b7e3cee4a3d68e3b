package app

import "github.com/flashsale/flashsale/stores/postgres"

// Options are what the code that starts a process chooses, not its operator (Config): the
// databases' statement tracing, for tests, and the switches that turn a mechanism off, for
// the benchmarks' baselines (cmd/bench). The zero value is what production runs.
type Options struct {
	DB postgres.Options
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

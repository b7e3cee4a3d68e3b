package app

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the API's collector pace when GOGC is not set: the heap may grow to
// nine times what is live before a collection, where Go's default is twice.
//
// In a flash sale every request allocates (about 30 KB for an accepted order, 11 KB for a
// refusal, mostly in net/http, gqlgen and encoding/json) while the live heap stays small:
// 30-40 MB for the whole in-process stack during make bench. At Go's default that was a
// collection every 50 ms of a burst, 25 in a 20,000-attempt one, and each took a quarter
// of the cores for its marking and made allocating goroutines help, right when the buyers
// waited: every cycle showed in the latencies as a 25-50 ms step (make bench with
// loadgen's attempt times beside the runtime's GC times). At 800 a burst sees one or two
// cycles, for some 350 MB of heap. Measured by make bench's p99 at concurrency 256, in
// rounds of three: 85 ms at 100; 49-53 at 400; 45-47 at 800 (README, "Benchmarks").
//
// GOMEMLIMIT, which the runtime reads itself, still bounds the heap where memory is short:
// the Kubernetes manifest sets it below the container's limit.
const serverGCPercent = 800

// TuneGC sets the collector's pace for the API unless the environment set GOGC. The workers
// keep Go's default: nobody waits on them in the burst's first second.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}

package app

import (
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// rushGCPercent is the collector's pace while the API serves a rush (Rush), when GOGC is not
// set: the heap may grow to nine times what is live before a collection, where Go's default,
// kept outside a rush, is twice.
//
// In a stampede every request allocates (about 30 KB for an accepted order, 11 KB for a
// refusal, mostly in net/http, gqlgen and encoding/json) while the live heap stays small:
// 30-40 MB for the whole in-process stack during make bench. At 400 a 20,000-attempt burst
// saw three collections; at Go's default, four times as many. Each took a quarter of the
// cores for its marking and made allocating goroutines help, right when the buyers waited,
// and each showed in the latencies as a 25-50 ms step (loadgen's attempt times laid beside
// the runtime's GC times). At 800 a burst sees one or two. make bench's p99 at concurrency
// 256, rounds of three, with the relay's hold: 61 ms at 100; 49-53 at 400; 45-47 at 800.
//
// Only for the rush's length: outside one there are few allocations to save, and a process
// holding thousands of websockets, whose connections are most of its memory (make bench's
// process reached 670 MB holding both ends of 5,000), has no reason to hold nine times it.
// GOMEMLIMIT, which the runtime reads itself, bounds the heap in a rush too where memory is
// short: the Kubernetes manifest sets it below the container's limit.
const rushGCPercent = 800

// rushGCPoll is how often a rush's collector pace looks whether the rush is over.
const rushGCPoll = 100 * time.Millisecond

// rushGC raises the collector's pace for the length of a rush.
type rushGC struct {
	percent int // 0: leave the collector alone (GOGC is set)
	raised  atomic.Bool
}

func newRushGC() *rushGC {
	if os.Getenv("GOGC") != "" {
		return &rushGC{}
	}
	return &rushGC{percent: rushGCPercent}
}

// raise sets the rush's pace unless it is set already, until busy says the rush is over.
// It costs one atomic load on every request of a rush but its first.
func (g *rushGC) raise(busy func() bool) {
	if g == nil || g.percent == 0 || g.raised.Load() || !g.raised.CompareAndSwap(false, true) {
		return
	}
	before := debug.SetGCPercent(g.percent)
	go func() {
		for busy() {
			time.Sleep(rushGCPoll)
		}
		debug.SetGCPercent(before)
		g.raised.Store(false)
	}()
}

package burst

import (
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultGCPercent is the collector's pace during a burst when GOGC is not set: the heap may
// grow to nine times what is live before a collection, where Go's default is twice. In a burst
// every request allocates while the live heap stays small, so fewer collections spare the
// buyers their pauses and assists. Outside a burst there is little to save, and a process
// holding many websockets has no reason to keep nine times its memory. GOMEMLIMIT, which the
// runtime reads itself, bounds the heap in a burst too where memory is short.
const DefaultGCPercent = 800

// gcPoll is how often a burst's collector pace looks whether the burst is over.
const gcPoll = 100 * time.Millisecond

// gcPace raises the collector's pace for the length of a burst. Its goroutine, started by the
// first peak of a burst, restores the pace when the burst ends or when close is called.
type gcPace struct {
	percent int
	raised  atomic.Bool

	mu     sync.Mutex // guards closed and the start of the goroutine against close
	closed bool
	done   chan struct{} // closed by close
	wg     sync.WaitGroup
}

// newGCPace returns the pace of percent (0: DefaultGCPercent), or nil when percent is negative
// or GOGC is set: then the collector is left alone.
func newGCPace(percent int) *gcPace {
	if percent < 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	if percent == 0 {
		percent = DefaultGCPercent
	}
	return &gcPace{percent: percent, done: make(chan struct{})}
}

// raise sets the burst's pace unless it is set already, until busy says the burst is over.
// It costs one atomic load on every request of a burst but its first.
func (g *gcPace) raise(busy func() bool) {
	if g == nil || g.raised.Load() || !g.raised.CompareAndSwap(false, true) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return // raised stays set: closed, the pace is never raised again
	}
	before := debug.SetGCPercent(g.percent)
	g.wg.Go(func() { g.watch(busy, before) })
}

// watch restores the pace before once busy says no or close is called.
func (g *gcPace) watch(busy func() bool, before int) {
	t := time.NewTicker(gcPoll)
	defer t.Stop()
	for busy() {
		select {
		case <-t.C:
		case <-g.done:
			debug.SetGCPercent(before)
			return
		}
	}
	debug.SetGCPercent(before)
	g.raised.Store(false)
}

// close stops the goroutine, if any, and waits for it to restore the pace.
func (g *gcPace) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

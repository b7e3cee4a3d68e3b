package bench

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"
)

// Settling between benchmarks: each one should start on a quiet machine, not on the tail of
// the one before (the flash sale leaves thousands of events for the notification and
// analytics workers, which the in-process stack runs beside the API).
const (
	quietWindow  = 250 * time.Millisecond
	quietShare   = 0.15 // of one core: what an idle stack's pollers and timers use is well below
	quietTimeout = 15 * time.Second
)

// waitQuiet waits until this process (the in-process stack with every worker, and the load
// generator) has used less than quietShare of a core over two windows in a row, or until
// quietTimeout, and says how long it waited. Measuring a running stack (-url) it waits for
// little, since the stack's CPU is another process's.
func waitQuiet(ctx context.Context, progress io.Writer) {
	start := time.Now()
	quiet := 0
	last, ok := processCPU()
	if !ok {
		return
	}
	for quiet < 2 && time.Since(start) < quietTimeout {
		select {
		case <-ctx.Done():
			return
		case <-time.After(quietWindow):
		}
		now, _ := processCPU()
		if (now - last).Seconds() < quietShare*quietWindow.Seconds() {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	if quiet < 2 {
		fmt.Fprintf(progress, "settle: still busy after %v; measuring anyway\n", quietTimeout)
		return
	}
	fmt.Fprintf(progress, "settle: quiet after %.1f s\n", time.Since(start).Seconds())
}

// processCPU is the user and system CPU time this process has used.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ForEach calls fn(i) for every i in [0, n) on at most workers goroutines, and returns once
// every call has. Once ctx ends no further call starts.
func ForEach(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(workers, 1), n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// Ticker writes line() to w once a second until stop is called; stop writes it once more, so
// the last figures are always shown, and returns after the ticker's goroutine has.
func Ticker(w io.Writer, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	})
	return sync.OnceFunc(func() {
		close(done)
		wg.Wait()
		fmt.Fprintln(w, line())
	})
}

// Sleep waits for d or until ctx ends, and reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

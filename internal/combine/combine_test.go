package combine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a combiner's write function that remembers its batches and can be held.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{} // when set, each write waits for a value
	fail    func(items []int) error
}

func (r *recorder) write(_ context.Context, _ int, items []int) ([]Outcome[int], error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), items...))
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(items); err != nil {
			return nil, err
		}
	}
	outs := make([]Outcome[int], len(items))
	for i, v := range items {
		outs[i].Val = 2 * v
	}
	return outs, nil
}

func (r *recorder) written() map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]int{}
	for _, b := range r.batches {
		for _, v := range b {
			seen[v]++
		}
	}
	return seen
}

func TestCombinerAloneWritesAtOnce(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	c := New(1, 10, 1, r.write, nil)
	got, err := c.Do(context.Background(), 0, 21)
	if err != nil || got != 42 {
		t.Fatalf("do = %d, %v; want 42", got, err)
	}
	if len(r.batches) != 1 || len(r.batches[0]) != 1 {
		t.Errorf("batches = %v, want one of one item", r.batches)
	}
}

func TestCombinerGathersWritesThatArriveWhileOneRuns(t *testing.T) {
	t.Parallel()
	r := &recorder{gate: make(chan struct{})}
	c := New(1, 50, 1, r.write, nil)
	var wg sync.WaitGroup
	results := make([]int, 101)
	wg.Go(func() { results[0], _ = c.Do(context.Background(), 0, 0) })
	waitQueued(t, c, 0) // the first write is running (held at the gate)
	for i := 1; i <= 100; i++ {
		wg.Go(func() { results[i], _ = c.Do(context.Background(), 0, i) })
	}
	waitQueued(t, c, 100)
	close(r.gate)
	wg.Wait()
	for i, v := range results {
		if v != 2*i {
			t.Fatalf("result %d = %d, want %d", i, v, 2*i)
		}
	}
	// One alone, then the 100 that queued behind it in batches of at most 50.
	if len(r.batches) != 3 || len(r.batches[1]) != 50 || len(r.batches[2]) != 50 {
		sizes := []int{}
		for _, b := range r.batches {
			sizes = append(sizes, len(b))
		}
		t.Errorf("batch sizes = %v, want [1 50 50]", sizes)
	}
}

func TestCombinerNeverWritesAWithdrawnItem(t *testing.T) {
	t.Parallel()
	r := &recorder{gate: make(chan struct{})}
	c := New(1, 50, 1, r.write, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Do(context.Background(), 0, 1) // runs, held at the gate
	}()
	waitQueued(t, c, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, 0, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued write whose context ended: err = %v, want deadline exceeded", err)
	}
	close(r.gate)
	<-done
	// The drain that took item 1 finds item 2 withdrawn and ends.
	testEventually(t, func() bool {
		c.queues[0].mu.Lock()
		defer c.queues[0].mu.Unlock()
		return c.queues[0].running == 0
	})
	if n := r.written()[2]; n != 0 {
		t.Errorf("withdrawn item written %d times", n)
	}
}

func TestCombinerRetriesABatchThatSplitTellsItemByItem(t *testing.T) {
	t.Parallel()
	bad := errors.New("item 13 is bad")
	r := &recorder{gate: make(chan struct{}), fail: func(items []int) error {
		for _, v := range items {
			if v == 13 {
				return bad
			}
		}
		return nil
	}}
	c := New(1, 50, 1, r.write, func(err error) bool { return errors.Is(err, bad) })
	var wg sync.WaitGroup
	errs := make([]error, 20)
	wg.Go(func() { _, errs[0] = c.Do(context.Background(), 0, 0) })
	waitQueued(t, c, 0)
	for i := 1; i < 20; i++ {
		wg.Go(func() { _, errs[i] = c.Do(context.Background(), 0, i) })
	}
	waitQueued(t, c, 19)
	close(r.gate)
	wg.Wait()
	for i, err := range errs {
		if (i == 13) != (err != nil) {
			t.Errorf("item %d: err = %v; only item 13 should fail", i, err)
		}
	}
	if n := r.written()[12]; n != 2 {
		t.Errorf("item 12 sent %d times, want 2 (in the failed batch, then alone)", n)
	}
}

func TestCombinerBatchEndsByItsEarliestDeadline(t *testing.T) {
	t.Parallel()
	var deadline atomic.Pointer[time.Time]
	c := New(1, 10, 1, func(ctx context.Context, _ int, items []int) ([]Outcome[int], error) {
		d, _ := ctx.Deadline()
		deadline.Store(&d)
		return make([]Outcome[int], len(items)), nil
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	if _, err := c.Do(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if got := *deadline.Load(); !got.Equal(want) {
		t.Errorf("batch deadline = %v, want the caller's %v", got, want)
	}
	c.Do(context.Background(), 0, 1)
	if got := *deadline.Load(); got.IsZero() || time.Until(got) > combineTimeout {
		t.Errorf("batch without caller deadlines ends at %v, want within %v", got, combineTimeout)
	}
}

// waitQueued waits until n requests wait in shard 0's queue.
func waitQueued(t *testing.T, c *Combiner[int, int], n int) {
	t.Helper()
	testEventually(t, func() bool {
		c.queues[0].mu.Lock()
		defer c.queues[0].mu.Unlock()
		return len(c.queues[0].pending) == n && c.queues[0].running > 0
	})
}

func testEventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

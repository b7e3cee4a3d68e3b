package loaders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFetch answers "v<key>" for even keys and an error for odd ones, counting its calls.
type fakeFetch struct {
	calls atomic.Int64
	sizes sync.Map
}

func (f *fakeFetch) fetch(ctx context.Context, keys []int) ([]string, []error) {
	f.calls.Add(1)
	f.sizes.Store(f.calls.Load(), len(keys))
	values := make([]string, len(keys))
	errs := make([]error, len(keys))
	for i, k := range keys {
		if k%2 == 0 {
			values[i] = fmt.Sprint("v", k)
		} else {
			errs[i] = errors.New("odd")
		}
	}
	return values, errs
}

func TestLoaderBatchesKeysThatKeepComing(t *testing.T) {
	t.Parallel()
	f := &fakeFetch{}
	l := NewLoader(f.fetch, 20*time.Millisecond, 5*time.Second, 1000)
	// Keys trickle in over far longer than the idle gap in total, but never with a gap that
	// long: one batch.
	var thunks []func() (string, error)
	for k := range 50 {
		thunks = append(thunks, l.Load(context.Background(), k))
		time.Sleep(time.Millisecond)
	}
	for k, th := range thunks {
		v, err := th()
		if k%2 == 0 && (err != nil || v != fmt.Sprint("v", k)) {
			t.Errorf("key %d: got %q, %v; want v%d", k, v, err, k)
		}
		if k%2 == 1 && err == nil {
			t.Errorf("key %d: got no error, want its own error", k)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
	// Asked again, a key is answered from the loader's memory.
	l.Load(context.Background(), 4)()
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetches after a repeated key = %d, want 1", got)
	}
}

func TestLoaderSplitsAtCapacityAndAfterSilence(t *testing.T) {
	t.Parallel()
	f := &fakeFetch{}
	l := NewLoader(f.fetch, 5*time.Millisecond, time.Second, 10)
	var wg sync.WaitGroup
	for k := range 25 {
		wg.Go(func() { l.Load(context.Background(), k*2)() })
	}
	wg.Wait()
	if got := f.calls.Load(); got != 3 {
		t.Errorf("fetches of 25 keys at capacity 10 = %d, want 3", got)
	}
	l.Load(context.Background(), 1000)()
	if got := f.calls.Load(); got != 4 {
		t.Errorf("fetches after a later key = %d, want 4", got)
	}
}

// The field that opened a batch being cancelled fails only its own wait, never the batch.
func TestLoaderCancelledCallerDoesNotPoisonTheBatch(t *testing.T) {
	t.Parallel()
	f := &fakeFetch{}
	l := NewLoader(f.fetch, 20*time.Millisecond, time.Second, 100)
	ctx, cancel := context.WithCancel(context.Background())
	first := l.Load(ctx, 2)
	second := l.Load(context.Background(), 4)
	cancel()
	if _, err := first(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
	}
	if v, err := second(); err != nil || v != "v4" {
		t.Errorf("other caller: got %q, %v; want v4", v, err)
	}
}

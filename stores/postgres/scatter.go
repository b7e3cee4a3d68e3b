package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ShardError says which shard failed during a scatter-gather.
type ShardError struct {
	Shard int
	Err   error
}

func (e *ShardError) Error() string { return fmt.Sprintf("shard %d: %v", e.Shard, e.Err) }
func (e *ShardError) Unwrap() error { return e.Err }

// scatter runs fn on each shard in parallel and returns the results in the order of shards.
// If any shard fails it returns no results and an error joining a *ShardError per failed
// shard: a caller can never mistake a partial answer for a complete one.
func scatter[T any](ctx context.Context, db *DB, shards []int, fn func(ctx context.Context, shard int) (T, error)) ([]T, error) {
	results := make([]T, len(shards))
	errs := make([]error, len(shards))
	parallel(len(shards), func(i int) { results[i], errs[i] = fn(ctx, shards[i]) })
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, &ShardError{Shard: shards[i], Err: err})
		}
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	return results, nil
}

// parallel calls fn(0) … fn(n-1) concurrently and waits for them all. One call, the common
// case of a request that touches a single shard, runs on the caller's goroutine.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

package loaders

import (
	"context"
	"slices"
	"sync"

	"github.com/graph-gophers/dataloader/v7"
)

// loader reads values of one kind by key for one response. A key the store holds a local
// copy of costs nothing; the rest go through a dataloader, so that a response costs a store
// call per batch rather than per key: its cache answers a key asked before, its batches
// gather the keys asked within its window, and prefetch reads a whole family at once.
type loader[K comparable, V any] struct {
	fetch    func(context.Context, []K) ([]V, []error)
	peek     func(K) (V, bool) // nil: the store keeps no local copies
	batching bool

	// The dataloader and its cache are made on first use: every response gets a loader of
	// each kind, and most responses (a refusal, a mutation's answer) use none of them.
	once  sync.Once
	cache *dataloader.InMemoryCache[K, V]
	dl    *dataloader.Loader[K, V]
}

// newLoader returns a loader over fetch, which must answer one value or error per key, in
// the order of the keys. Without batching every key is its own store call.
func newLoader[K comparable, V any](fetch func(context.Context, []K) ([]V, []error), peek func(K) (V, bool), batching bool) *loader[K, V] {
	return &loader[K, V]{fetch: fetch, peek: peek, batching: batching}
}

// ready makes the dataloader and its cache, once.
func (l *loader[K, V]) ready() {
	l.once.Do(func() {
		capacity := batchCapacity
		if !l.batching {
			capacity = 1
		}
		l.cache = dataloader.NewCache[K, V]()
		l.dl = dataloader.NewBatchedLoader(l.batch,
			dataloader.WithCache[K, V](l.cache),
			dataloader.WithWait[K, V](wait),
			dataloader.WithBatchCapacity[K, V](capacity),
		)
	})
}

// load returns the value of key.
func (l *loader[K, V]) load(ctx context.Context, key K) (V, error) {
	if l.peek != nil {
		if v, ok := l.peek(key); ok {
			return v, nil
		}
	}
	l.ready()
	return l.dl.Load(ctx, key)()
}

// batch is the dataloader's batch function.
func (l *loader[K, V]) batch(ctx context.Context, keys []K) []*dataloader.Result[V] {
	values, errs := l.fetchDetached(ctx, keys)
	results := make([]*dataloader.Result[V], len(keys))
	for i := range keys {
		results[i] = &dataloader.Result[V]{Data: values[i], Error: errs[i]}
	}
	return results
}

// fetchDetached calls the store with a context that the caller's cancellation does not end:
// the keys of others ride on the call (dataloader issue #105).
func (l *loader[K, V]) fetchDetached(ctx context.Context, keys []K) ([]V, []error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	return l.fetch(ctx, keys)
}

// prefetch reads every key not yet known, in one store call per batchCapacity keys, and
// leaves each answer, value or error, in the dataloader's cache, so that loading any of the
// keys afterwards sends nothing. It returns the values of all keys it could find (local,
// cached or read), once each; zero keys are skipped.
func (l *loader[K, V]) prefetch(ctx context.Context, keys []K) []V {
	var (
		zero    K
		found   = make([]V, 0, len(keys))
		missing []K
		seen    = make(map[K]bool, len(keys))
	)
	l.ready()
	for _, k := range keys {
		if k == zero || seen[k] {
			continue
		}
		seen[k] = true
		if l.peek != nil {
			if v, ok := l.peek(k); ok {
				found = append(found, v)
				continue
			}
		}
		if thunk, ok := l.cache.Get(ctx, k); ok {
			if v, err := thunk(); err == nil {
				found = append(found, v)
			}
			continue
		}
		missing = append(missing, k)
	}
	for chunk := range slices.Chunk(missing, batchCapacity) {
		values, errs := l.fetchDetached(ctx, chunk)
		for i, k := range chunk {
			v, err := values[i], errs[i]
			l.cache.Set(ctx, k, func() (V, error) { return v, err })
			if err == nil {
				found = append(found, v)
			}
		}
	}
	return found
}

// prime leaves values already read (the rows of a list) in the dataloader's cache, so that
// loading one of them sends nothing. A key already there keeps its answer.
func (l *loader[K, V]) prime(values []V, key func(V) K) {
	if !l.batching {
		return
	}
	l.ready()
	for _, v := range values {
		k := key(v)
		if _, ok := l.cache.Get(context.Background(), k); !ok {
			l.cache.Set(context.Background(), k, func() (V, error) { return v, nil })
		}
	}
}

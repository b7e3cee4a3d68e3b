package loaders

import (
	"context"
	"sync"
)

// family is a set of values read together: the rows of one list, or what one prefetch
// found. The first resolver to ask for something of one kind that a member refers to (an
// order's user, a sale's product) asks for it for every member at once; the others wait for
// that read and are then answered from the loader's cache.
type family[V any] struct {
	members []V
	asked   [kinds]sync.Once
}

// kind is what a member refers to, one sync.Once each.
type kind int

const (
	userKind kind = iota
	productKind
	saleKind
	orderKind
	ordersPageKind
	activeSaleKind
	kinds
)

// families finds the family of a value by its key. A value in two families (the same order
// in two lists) stays in the first: either reads its siblings' references at once.
type families[K comparable, V any] struct {
	byKey sync.Map // K → *family[V]
}

// add makes members a family, unless there are none.
func (fs *families[K, V]) add(key func(V) K, members []V) {
	if len(members) == 0 {
		return
	}
	f := &family[V]{members: members}
	for _, m := range members {
		fs.byKey.LoadOrStore(key(m), f)
	}
}

// of returns the family of the value with key k, or nil if it was read alone.
func (fs *families[K, V]) of(k K) *family[V] {
	f, ok := fs.byKey.Load(k)
	if !ok {
		return nil
	}
	return f.(*family[V])
}

// refer returns what parent refers to (ref(parent)) through l. If parent belongs to a
// family, the first call of this kind prefetches the references of every member, then hands
// what it found to found (to make it a family in turn) before any sibling gets an answer.
// A parent read alone asks l directly, where the dataloader's window gathers it with others.
func refer[PK comparable, P any, K comparable, V any](ctx context.Context, fs *families[PK, P], pk PK, parent P, k kind,
	l *loader[K, V], ref func(P) K, found func([]V)) (V, error) {
	if f := fs.of(pk); f != nil && l.batching {
		f.asked[k].Do(func() {
			keys := make([]K, len(f.members))
			for i, m := range f.members {
				keys[i] = ref(m)
			}
			values := l.prefetch(ctx, keys)
			if found != nil {
				found(values)
			}
		})
	}
	return l.load(ctx, ref(parent))
}

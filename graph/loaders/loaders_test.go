package loaders

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/flashsale/flashsale"
)

// table is a fake store of one entity: rows by key, local copies (Peek), and the
// keys of every call, in order.
type table[K comparable, V any] struct {
	mu    sync.Mutex
	rows  map[K]V
	local map[K]V
	calls [][]K
}

func (t *table[K, V]) find(ctx context.Context, keys []K) ([]V, []error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, slices.Clone(keys))
	values := make([]V, len(keys))
	errs := make([]error, len(keys))
	for i, k := range keys {
		switch v, ok := t.rows[k]; {
		case ctx.Err() != nil:
			errs[i] = ctx.Err()
		case ok:
			values[i] = v
		default:
			errs[i] = flashsale.Errorf(flashsale.ENOTFOUND, "no row %v", k)
		}
	}
	return values, errs
}

func (t *table[K, V]) peek(k K) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.local[k]
	return v, ok
}

func (t *table[K, V]) callsSoFar() [][]K {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

type users struct {
	flashsale.UserStore
	*table[flashsale.UserID, *flashsale.User]
}

func (s users) FindUsersByIDs(ctx context.Context, ids []flashsale.UserID) ([]*flashsale.User, []error) {
	return s.find(ctx, ids)
}

type products struct {
	flashsale.ProductStore
	*table[flashsale.ProductID, *flashsale.Product]
}

func (s products) FindProductsByIDs(ctx context.Context, ids []flashsale.ProductID) ([]*flashsale.Product, []error) {
	return s.find(ctx, ids)
}

func (s products) Peek(id flashsale.ProductID) (*flashsale.Product, bool) { return s.peek(id) }

type sales struct {
	flashsale.SaleStore
	*table[flashsale.SaleID, *flashsale.FlashSale]
}

func (s sales) FindSalesByIDs(ctx context.Context, ids []flashsale.SaleID) ([]*flashsale.FlashSale, []error) {
	return s.find(ctx, ids)
}

type orders struct {
	flashsale.OrderStore
	*table[flashsale.OrderID, *flashsale.Order]
}

func (s orders) FindOrdersByIDs(ctx context.Context, ids []flashsale.OrderID) ([]*flashsale.Order, []error) {
	return s.find(ctx, ids)
}

// shop is a fake shop of 5 users, 3 products (the third with a local copy), 2 sales and 60 orders,
// the order i by user i%5 of product i%3, every other one in sale i%2+1.
type shop struct {
	users    *table[flashsale.UserID, *flashsale.User]
	products *table[flashsale.ProductID, *flashsale.Product]
	sales    *table[flashsale.SaleID, *flashsale.FlashSale]
	orders   *table[flashsale.OrderID, *flashsale.Order]
	list     []*flashsale.Order
}

func newShop() *shop {
	s := &shop{
		users:    &table[flashsale.UserID, *flashsale.User]{rows: map[flashsale.UserID]*flashsale.User{}},
		products: &table[flashsale.ProductID, *flashsale.Product]{rows: map[flashsale.ProductID]*flashsale.Product{}, local: map[flashsale.ProductID]*flashsale.Product{}},
		sales:    &table[flashsale.SaleID, *flashsale.FlashSale]{rows: map[flashsale.SaleID]*flashsale.FlashSale{}},
		orders:   &table[flashsale.OrderID, *flashsale.Order]{rows: map[flashsale.OrderID]*flashsale.Order{}},
	}
	for i := range 5 {
		s.users.rows[flashsale.UserID(i+1)] = &flashsale.User{ID: flashsale.UserID(i + 1), Name: fmt.Sprint("user ", i+1)}
	}
	for i := range 3 {
		p := &flashsale.Product{ID: flashsale.ProductID(i + 1), Name: fmt.Sprint("product ", i+1)}
		s.products.rows[p.ID] = p
		if i == 2 {
			s.products.local[p.ID] = p
		}
	}
	for i := range 2 {
		s.sales.rows[flashsale.SaleID(i+1)] = &flashsale.FlashSale{ID: flashsale.SaleID(i + 1), ProductID: flashsale.ProductID(i + 1)}
	}
	for i := range 60 {
		o := &flashsale.Order{ID: flashsale.OrderID(i + 1), UserID: flashsale.UserID(i%5 + 1), ProductID: flashsale.ProductID(i%3 + 1)}
		if i%2 == 1 {
			o.SaleID = flashsale.SaleID(i%4/2 + 1)
		}
		s.orders.rows[o.ID] = o
		s.list = append(s.list, o)
	}
	return s
}

func (s *shop) loaders(batching bool) *Loaders {
	return New(flashsale.Stores{
		Users: users{table: s.users}, Products: products{table: s.products},
		Sales: sales{table: s.sales}, Orders: orders{table: s.orders},
	}, batching)
}

// each runs f for every order at once, as gqlgen runs the fields of a list.
func each(list []*flashsale.Order, f func(*flashsale.Order)) {
	var wg sync.WaitGroup
	for _, o := range list {
		wg.Go(func() { f(o) })
	}
	wg.Wait()
}

func TestListedOrdersReadEachReferenceOnceForAll(t *testing.T) {
	t.Parallel()
	s := newShop()
	l := s.loaders(true)
	l.ListedOrders(s.list)
	ctx := context.Background()
	each(s.list, func(o *flashsale.Order) {
		u, err := l.UserOfOrder(ctx, o)
		if err != nil || u.ID != o.UserID {
			t.Errorf("order %d: user %v, %v; want user %d", o.ID, u, err, o.UserID)
		}
		p, err := l.ProductOfOrder(ctx, o)
		if err != nil || p.ID != o.ProductID {
			t.Errorf("order %d: product %v, %v; want product %d", o.ID, p, err, o.ProductID)
		}
		if o.SaleID != 0 {
			sale, err := l.SaleOfOrder(ctx, o)
			if err != nil || sale.ID != o.SaleID {
				t.Errorf("order %d: sale %v, %v; want sale %d", o.ID, sale, err, o.SaleID)
			}
		}
	})
	// One call each, with each key once; product 3 has a local copy, so is never read.
	if got, want := fmt.Sprint(s.users.callsSoFar()), "[[usr_1 usr_2 usr_3 usr_4 usr_5]]"; got != want {
		t.Errorf("user reads = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(s.products.callsSoFar()), "[[prd_1 prd_2]]"; got != want {
		t.Errorf("product reads = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(s.sales.callsSoFar()), "[[sal_1 sal_2]]"; got != want {
		t.Errorf("sale reads = %s, want %s", got, want)
	}

	// The sales read together are a family too: their products come from the cache.
	each(s.list, func(o *flashsale.Order) {
		if o.SaleID == 0 {
			return
		}
		sale, _ := l.SaleOfOrder(ctx, o)
		if p, err := l.ProductOfSale(ctx, sale); err != nil || p.ID != sale.ProductID {
			t.Errorf("sale %d: product %v, %v; want product %d", sale.ID, p, err, sale.ProductID)
		}
	})
	if got := len(s.products.callsSoFar()); got != 1 {
		t.Errorf("product reads after the sales' products = %d, want still 1", got)
	}
}

// A key the store does not know answers its own error, from the family's one read.
func TestMissingReferenceAnswersItsOwnError(t *testing.T) {
	t.Parallel()
	s := newShop()
	l := s.loaders(true)
	list := append(slices.Clone(s.list[:10]), &flashsale.Order{ID: 999, UserID: 404, ProductID: 1})
	l.ListedOrders(list)
	each(list, func(o *flashsale.Order) {
		u, err := l.UserOfOrder(context.Background(), o)
		switch {
		case o.UserID == 404 && flashsale.ErrorCode(err) != flashsale.ENOTFOUND:
			t.Errorf("order of an unknown user: %v, %v; want NOT_FOUND", u, err)
		case o.UserID != 404 && (err != nil || u.ID != o.UserID):
			t.Errorf("order %d: user %v, %v; want user %d", o.ID, u, err, o.UserID)
		}
	})
	if got, want := fmt.Sprint(s.users.callsSoFar()), "[[usr_1 usr_2 usr_3 usr_4 usr_5 usr_404]]"; got != want {
		t.Errorf("user reads = %s, want %s", got, want)
	}
}

// The resolver that starts a family's read may be cancelled; its siblings still get theirs.
func TestCancelledAskerDoesNotFailItsSiblings(t *testing.T) {
	t.Parallel()
	s := newShop()
	l := s.loaders(true)
	l.ListedOrders(s.list)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	l.UserOfOrder(cancelled, s.list[0])
	if u, err := l.UserOfOrder(context.Background(), s.list[1]); err != nil || u.ID != s.list[1].UserID {
		t.Errorf("sibling: user %v, %v; want user %d", u, err, s.list[1].UserID)
	}
}

// An order read alone (a mutation's answer) is answered too, and a key asked twice is read
// once.
func TestLoneReferencesAreLoadedOnce(t *testing.T) {
	t.Parallel()
	s := newShop()
	l := s.loaders(true)
	ctx := context.Background()
	each(s.list[:10], func(o *flashsale.Order) {
		if u, err := l.UserOfOrder(ctx, o); err != nil || u.ID != o.UserID {
			t.Errorf("order %d: user %v, %v; want user %d", o.ID, u, err, o.UserID)
		}
	})
	seen := map[flashsale.UserID]int{}
	for _, call := range s.users.callsSoFar() {
		for _, k := range call {
			seen[k]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("user %d read %d times, want once", k, n)
		}
	}
	if len(seen) != 5 {
		t.Errorf("users read = %v, want the 5 of the orders", seen)
	}
	// A product with a local copy needs no read at all.
	if p, err := l.ProductOfOrder(ctx, s.list[2]); err != nil || p.ID != 3 || len(s.products.callsSoFar()) != 0 {
		t.Errorf("product with a local copy: %v, %v after %d reads; want product 3 and no read", p, err, len(s.products.callsSoFar()))
	}
}

// With batching off (the benchmarks' N+1 baseline) every key is its own read, lists or not.
func TestWithoutBatchingEveryKeyIsItsOwnRead(t *testing.T) {
	t.Parallel()
	s := newShop()
	l := s.loaders(false)
	l.ListedOrders(s.list)
	each(s.list, func(o *flashsale.Order) { l.UserOfOrder(context.Background(), o) })
	calls := s.users.callsSoFar()
	if len(calls) != 5 {
		t.Errorf("user reads = %v, want 5 of one key each", calls)
	}
	for _, c := range calls {
		if len(c) != 1 {
			t.Errorf("a read of %d keys %v, want 1", len(c), c)
		}
	}
}

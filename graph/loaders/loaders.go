// Package loaders batches the reads of one GraphQL response on graph-gophers/dataloader, so
// that a level of a query costs one statement per shard touched rather than one per key.
// Values read together (a list's rows, a query's root fields) form a family: the first
// resolver that needs something they refer to (an order's user) reads it for the whole family
// in one store call, so batching does not depend on how the scheduler interleaves resolvers;
// only keys outside any family wait for the dataloader's short window. Loaders are made per
// response (PerResponse, reached with For), so one viewer never sees another's answers.
package loaders

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/flashsale/flashsale"
)

// Loaders of one response. Resolvers call its methods (fields.go), one per field that reads
// through a loader.
type Loaders struct {
	batching bool

	users      *loader[flashsale.UserID, *flashsale.User]
	products   *loader[flashsale.ProductID, *flashsale.Product]
	sales      *loader[flashsale.SaleID, *flashsale.FlashSale]
	orders     *loader[flashsale.OrderID, *flashsale.Order]
	userOrders *loader[UserOrdersKey, OrderPage]
	// activeSales answers Product.activeSale: a product's open sale, or nil.
	activeSales *loader[flashsale.ProductID, *flashsale.FlashSale]

	// Families of values read together, by the key of each member.
	userFamilies         families[flashsale.UserID, *flashsale.User]
	saleFamilies         families[flashsale.SaleID, *flashsale.FlashSale]
	orderFamilies        families[flashsale.OrderID, *flashsale.Order]
	notificationFamilies families[int64, *flashsale.Notification]
	productFamilies      families[flashsale.ProductID, *flashsale.Product]
	// roots reads each kind of root field for the whole query at once; nodes reads what
	// every root node(id:) field asks for.
	roots [kinds]sync.Once
	nodes sync.Once

	// readings are live figures of sales this response already holds (readings.go).
	readings sync.Map // flashsale.SaleID → saleReading
}

// UserOrdersKey asks for the newest First orders of a user.
type UserOrdersKey struct {
	User  flashsale.UserID
	First int
}

// OrderPage is one page of a user's orders.
type OrderPage struct {
	Orders []*flashsale.Order
	More   bool
}

const (
	// wait is the dataloader's window for keys outside any family: a mutation's or a
	// subscription event's order, a list no resolver declared. Families never wait for it.
	wait = 2 * time.Millisecond
	// batchCapacity caps keys per store call. `= ANY($1)` with 1,000 ids is one fast index
	// scan per shard; beyond that a read is split, which keeps statements and plans small.
	batchCapacity = 1000
	// batchTimeout bounds a store call, which runs detached from the context of whichever
	// field started it: that field being cancelled must not fail its siblings' keys.
	batchTimeout = 5 * time.Second
)

// New returns fresh loaders over the stores. With batching off every key is its own store
// call, which is how the N+1 baseline of the benchmarks is measured.
func New(s flashsale.Stores, batching bool) *Loaders {
	return &Loaders{
		batching:   batching,
		users:      newLoader(s.Users.FindUsersByIDs, peekOf[flashsale.UserID, flashsale.User](s.Users), batching),
		products:   newLoader(s.Products.FindProductsByIDs, peekOf[flashsale.ProductID, flashsale.Product](s.Products), batching),
		sales:      newLoader(s.Sales.FindSalesByIDs, peekOf[flashsale.SaleID, flashsale.FlashSale](s.Sales), batching),
		orders:     newLoader(s.Orders.FindOrdersByIDs, nil, batching),
		userOrders: newLoader(userOrders(s.Orders), nil, batching),
		activeSales: newLoader(func(ctx context.Context, ids []flashsale.ProductID) ([]*flashsale.FlashSale, []error) {
			return s.Sales.FindCurrentSalesOfProducts(ctx, ids, time.Now())
		}, nil, batching),
	}
}

// peeker is a store that may hold a local copy of an entity in memory (stores/redis's caches
// do): a key it holds is answered at once, with no store call.
type peeker[K any, V any] interface {
	Peek(K) (*V, bool)
}

func peekOf[K any, V any](store any) func(K) (*V, bool) {
	if p, ok := store.(peeker[K, V]); ok {
		return p.Peek
	}
	return nil
}

// userOrders sends one store call per distinct page size (in practice one).
func userOrders(orders flashsale.OrderStore) func(context.Context, []UserOrdersKey) ([]OrderPage, []error) {
	return func(ctx context.Context, keys []UserOrdersKey) ([]OrderPage, []error) {
		pages := make([]OrderPage, len(keys))
		errs := make([]error, len(keys))
		bySize := map[int][]int{}
		for i, k := range keys {
			bySize[k.First] = append(bySize[k.First], i)
		}
		for first, positions := range bySize {
			users := make([]flashsale.UserID, len(positions))
			for j, p := range positions {
				users[j] = keys[p].User
			}
			lists, more, listErrs := orders.ListOrdersOfUsers(ctx, users, first)
			for j, p := range positions {
				pages[p], errs[p] = OrderPage{Orders: lists[j], More: more[j]}, listErrs[j]
			}
		}
		return pages, errs
	}
}

type ctxKey struct{}

// For returns the request's loaders. It panics if PerResponse did not run: that is a wiring
// fault, found by the first test.
func For(ctx context.Context) *Loaders { return ctx.Value(ctxKey{}).(*Loaders) }

// WithLoaders returns a context carrying loaders (subscriptions and tests use it).
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// PerResponse returns a gqlgen response middleware that gives every response fresh loaders:
// one per query or mutation, and one per event of a subscription, so that a long-lived
// websocket never serves values cached when it opened.
func PerResponse(s flashsale.Stores, batching bool) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		return next(WithLoaders(ctx, New(s, batching)))
	}
}

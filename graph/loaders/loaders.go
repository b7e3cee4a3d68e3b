// Package loaders batches the reads of one GraphQL response: every resolver that needs a user,
// product, flash sale or order by id asks its loader, and each loader turns the keys gathered
// within a millisecond into one store call, which sends one statement per shard touched.
// Loaders are made per request (Middleware) and reached with For(ctx); nothing is shared
// between requests, so one viewer never sees another's cached answers.
package loaders

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/flashsale/flashsale"
)

// Stores are what the loaders read from.
type Stores struct {
	Users    flashsale.UserStore
	Products flashsale.ProductStore
	Sales    flashsale.SaleStore
	Orders   flashsale.OrderStore
}

// Loaders of one request.
type Loaders struct {
	Users    *Loader[flashsale.UserID, *flashsale.User]
	Products *Loader[flashsale.ProductID, *flashsale.Product]
	Sales    *Loader[flashsale.SaleID, *flashsale.FlashSale]
	Orders   *Loader[flashsale.OrderID, *flashsale.Order]
	// UserOrders loads the first page of a user's orders; later pages go to the store.
	UserOrders *Loader[UserOrdersKey, OrderPage]
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

// Timing tunes when a batch closes; zero fields take the defaults below.
type Timing struct {
	Idle    time.Duration
	MaxWait time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.Idle == 0 {
		t.Idle = idle
	}
	if t.MaxWait == 0 {
		t.MaxWait = maxWait
	}
	return t
}

const (
	// idle closes a batch once no key has arrived for this long. The fields of one level of
	// a query reach their loaders microseconds apart while gqlgen starts them, but on two
	// busy cores the scheduler can run other goroutines for a millisecond or two in between;
	// 3ms of silence means the level is complete, and is all a small request pays.
	idle = 3 * time.Millisecond
	// maxWait closes a batch however keys keep coming, bounding what one level can add to a
	// request's latency.
	maxWait = 50 * time.Millisecond
	// batchCapacity caps keys per batch. `= ANY($1)` with 1,000 ids is one fast index scan
	// per shard; beyond that a batch is split, which keeps statements and their plans small.
	batchCapacity = 1000
	// batchTimeout bounds a batch's store call, which runs detached from the context of
	// whichever field opened the batch.
	batchTimeout = 5 * time.Second
)

// New returns fresh loaders over the stores. With batching off every key is its own batch,
// which is how the N+1 baseline of the benchmarks is measured.
func New(s Stores, batching bool, t Timing) *Loaders {
	capacity := batchCapacity
	if !batching {
		capacity = 1
	}
	t = t.withDefaults()
	users := NewLoader(s.Users.FindUsersByIDs, t.Idle, t.MaxWait, capacity)
	users.peek = peekOf[flashsale.UserID, flashsale.User](s.Users)
	products := NewLoader(s.Products.FindProductsByIDs, t.Idle, t.MaxWait, capacity)
	products.peek = peekOf[flashsale.ProductID, flashsale.Product](s.Products)
	sales := NewLoader(s.Sales.FindSalesByIDs, t.Idle, t.MaxWait, capacity)
	sales.peek = peekOf[flashsale.SaleID, flashsale.FlashSale](s.Sales)
	return &Loaders{
		Users:      users,
		Products:   products,
		Sales:      sales,
		Orders:     NewLoader(s.Orders.FindOrdersByIDs, t.Idle, t.MaxWait, capacity),
		UserOrders: NewLoader(userOrders(s.Orders), t.Idle, t.MaxWait, capacity),
	}
}

// peeker is a store that may hold a near copy of an entity in memory (stores/redis's caches
// do): a key it holds needs no batch, so a request reading only such keys waits for no
// batching window.
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

// For returns the request's loaders. It panics if Middleware did not run: that is a wiring
// fault, found by the first test.
func For(ctx context.Context) *Loaders { return ctx.Value(ctxKey{}).(*Loaders) }

// WithLoaders returns a context carrying loaders (subscriptions and tests use it).
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// PerResponse returns a gqlgen response middleware that gives every response fresh loaders:
// one per query or mutation, and one per event of a subscription, so that a long-lived
// websocket never serves values cached when it opened.
func PerResponse(s Stores, batching bool, t Timing) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		return next(WithLoaders(ctx, New(s, batching, t)))
	}
}

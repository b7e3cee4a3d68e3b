// Package loaders batches the reads of one GraphQL request: every resolver that needs a user,
// product, flash sale or order by id asks its loader, and each loader turns the keys gathered
// within a millisecond into one store call, which sends one statement per shard touched.
// Loaders are made per request (Middleware) and reached with For(ctx); nothing is shared
// between requests, so one viewer never sees another's cached answers.
package loaders

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"

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
	Users    *dataloader.Loader[flashsale.UserID, *flashsale.User]
	Products *dataloader.Loader[flashsale.ProductID, *flashsale.Product]
	Sales    *dataloader.Loader[flashsale.SaleID, *flashsale.FlashSale]
	Orders   *dataloader.Loader[flashsale.OrderID, *flashsale.Order]
	// UserOrders loads the first page of a user's orders; later pages go to the store.
	UserOrders *dataloader.Loader[UserOrdersKey, OrderPage]
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
	// wait is how long a loader gathers keys before it sends the batch. gqlgen resolves the
	// fields of a list concurrently, and they reach their loaders within microseconds of each
	// other; a millisecond gathers a whole level of the query for a cost no user notices.
	wait = time.Millisecond
	// batchCapacity caps keys per batch. `= ANY($1)` with 1,000 ids is one fast index scan
	// per shard; beyond that a batch is split, which keeps statements and their plans small.
	batchCapacity = 1000
	// batchTimeout bounds a batch's store call. The call runs detached from the context of
	// whichever resolver happened to start the batch (dataloader issue #105): that field's
	// cancellation must not fail the other fields' keys.
	batchTimeout = 5 * time.Second
)

// New returns fresh loaders over the stores. With batching off every key is its own batch,
// which is how the N+1 baseline of the benchmarks is measured.
func New(s Stores, batching bool) *Loaders {
	capacity := batchCapacity
	if !batching {
		capacity = 1
	}
	return &Loaders{
		Users:    newLoader(s.Users.FindUsersByIDs, capacity),
		Products: newLoader(s.Products.FindProductsByIDs, capacity),
		Sales:    newLoader(s.Sales.FindSalesByIDs, capacity),
		Orders:   newLoader(s.Orders.FindOrdersByIDs, capacity),
		UserOrders: dataloader.NewBatchedLoader(userOrdersBatch(s.Orders),
			dataloader.WithWait[UserOrdersKey, OrderPage](wait),
			dataloader.WithBatchCapacity[UserOrdersKey, OrderPage](capacity)),
	}
}

// newLoader wraps a store's FindXByIDs, which already answers per key in key order.
func newLoader[K comparable, V any](find func(context.Context, []K) ([]V, []error), capacity int) *dataloader.Loader[K, V] {
	batch := func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
		defer cancel()
		values, errs := find(ctx, keys)
		results := make([]*dataloader.Result[V], len(keys))
		for i := range keys {
			results[i] = &dataloader.Result[V]{Data: values[i], Error: errs[i]}
		}
		return results
	}
	return dataloader.NewBatchedLoader(batch, dataloader.WithWait[K, V](wait), dataloader.WithBatchCapacity[K, V](capacity))
}

// userOrdersBatch sends one store call per distinct page size (in practice one).
func userOrdersBatch(orders flashsale.OrderStore) dataloader.BatchFunc[UserOrdersKey, OrderPage] {
	return func(ctx context.Context, keys []UserOrdersKey) []*dataloader.Result[OrderPage] {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
		defer cancel()
		results := make([]*dataloader.Result[OrderPage], len(keys))
		bySize := map[int][]int{}
		for i, k := range keys {
			bySize[k.First] = append(bySize[k.First], i)
		}
		for first, positions := range bySize {
			users := make([]flashsale.UserID, len(positions))
			for j, p := range positions {
				users[j] = keys[p].User
			}
			lists, more, errs := orders.ListOrdersOfUsers(ctx, users, first)
			for j, p := range positions {
				results[p] = &dataloader.Result[OrderPage]{Data: OrderPage{Orders: lists[j], More: more[j]}, Error: errs[j]}
			}
		}
		return results
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
func PerResponse(s Stores, batching bool) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		return next(WithLoaders(ctx, New(s, batching)))
	}
}

package loaders

import (
	"context"
	"sync"

	"github.com/flashsale/flashsale"
)

// The root node(id:) field reads through these. The first node field of a query reads what
// every node field at the query's root asks for, each kind in one store call (one statement
// per shard touched), so that a query of many aliased nodes is not one read per id.

// UserNode answers node(id:) for a user id.
func (l *Loaders) UserNode(ctx context.Context, id flashsale.UserID) (*flashsale.User, error) {
	l.readNodes(ctx)
	return l.users.load(ctx, id)
}

// ProductNode answers node(id:) for a product id.
func (l *Loaders) ProductNode(ctx context.Context, id flashsale.ProductID) (*flashsale.Product, error) {
	l.readNodes(ctx)
	return l.products.load(ctx, id)
}

// SaleNode answers node(id:) for a flash sale id.
func (l *Loaders) SaleNode(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	l.readNodes(ctx)
	return l.sales.load(ctx, id)
}

// OrderNode answers node(id:) for an order id.
func (l *Loaders) OrderNode(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error) {
	l.readNodes(ctx)
	return l.orders.load(ctx, id)
}

// readNodes reads, once per response, every id the root node fields ask for, the kinds side
// by side. What it finds forms families, so that what the nodes refer to (an order's
// product, a sale's product) is read for all of them at once too.
func (l *Loaders) readNodes(ctx context.Context) {
	if !l.batching {
		return
	}
	l.nodes.Do(func() {
		var wg sync.WaitGroup
		wg.Go(func() {
			l.userFamilies.add(userKey, l.users.prefetch(ctx, rootArguments(ctx, "node", "id", flashsale.ParseUserID)))
		})
		wg.Go(func() {
			l.products.prefetch(ctx, rootArguments(ctx, "node", "id", flashsale.ParseProductID))
		})
		wg.Go(func() {
			l.saleFamilies.add(saleKey, l.sales.prefetch(ctx, rootArguments(ctx, "node", "id", flashsale.ParseSaleID)))
		})
		wg.Go(func() {
			l.orderFamilies.add(orderKey, l.orders.prefetch(ctx, rootArguments(ctx, "node", "id", flashsale.ParseOrderID)))
		})
		wg.Wait()
	})
}

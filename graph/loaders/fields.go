package loaders

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
)

// Order answers a root `order(id:)` field. The first such field of a query reads every order
// the query's root asks for, so a query of many aliased orders sends one statement per shard.
func (l *Loaders) Order(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error) {
	l.root(ctx, orderKind, func() {
		ids := rootArguments(ctx, "order", "id", flashsale.ParseOrderID)
		l.orderFamilies.add(orderKey, l.orders.prefetch(ctx, ids))
	})
	return l.orders.load(ctx, id)
}

// Product answers a root `product(id:)` field, reading every product the query's root asks
// for at once.
func (l *Loaders) Product(ctx context.Context, id flashsale.ProductID) (*flashsale.Product, error) {
	l.root(ctx, productKind, func() {
		l.productFamilies.add(productKey, l.products.prefetch(ctx, rootArguments(ctx, "product", "id", flashsale.ParseProductID)))
	})
	return l.products.load(ctx, id)
}

// Viewer answers the root `me` field.
func (l *Loaders) Viewer(ctx context.Context, id flashsale.UserID) (*flashsale.User, error) {
	l.root(ctx, userKind, func() {
		l.userFamilies.add(userKey, l.users.prefetch(ctx, []flashsale.UserID{id}))
	})
	return l.users.load(ctx, id)
}

// UserOfOrder answers Order.user.
func (l *Loaders) UserOfOrder(ctx context.Context, o *flashsale.Order) (*flashsale.User, error) {
	return refer(ctx, &l.orderFamilies, o.ID, o, userKind, l.users,
		func(o *flashsale.Order) flashsale.UserID { return o.UserID },
		func(users []*flashsale.User) { l.userFamilies.add(userKey, users) })
}

// ProductOfOrder answers Order.product.
func (l *Loaders) ProductOfOrder(ctx context.Context, o *flashsale.Order) (*flashsale.Product, error) {
	return refer(ctx, &l.orderFamilies, o.ID, o, productKind, l.products,
		func(o *flashsale.Order) flashsale.ProductID { return o.ProductID }, l.foundProducts)
}

// SaleOfOrder answers Order.flashSale of an order placed in a sale (SaleID not 0).
func (l *Loaders) SaleOfOrder(ctx context.Context, o *flashsale.Order) (*flashsale.FlashSale, error) {
	return refer(ctx, &l.orderFamilies, o.ID, o, saleKind, l.sales,
		func(o *flashsale.Order) flashsale.SaleID { return o.SaleID },
		func(sales []*flashsale.FlashSale) { l.saleFamilies.add(saleKey, sales) })
}

// ProductOfSale answers FlashSale.product.
func (l *Loaders) ProductOfSale(ctx context.Context, s *flashsale.FlashSale) (*flashsale.Product, error) {
	return refer(ctx, &l.saleFamilies, s.ID, s, productKind, l.products,
		func(s *flashsale.FlashSale) flashsale.ProductID { return s.ProductID }, l.foundProducts)
}

// OrderOfNotification answers Notification.order.
func (l *Loaders) OrderOfNotification(ctx context.Context, n *flashsale.Notification) (*flashsale.Order, error) {
	return refer(ctx, &l.notificationFamilies, n.ID, n, orderKind, l.orders,
		func(n *flashsale.Notification) flashsale.OrderID { return n.OrderID },
		func(orders []*flashsale.Order) { l.orderFamilies.add(orderKey, orders) })
}

// FirstOrdersOfUser answers the first page (first orders) of User.orders. The user's
// siblings' first pages are read with it, at the same size.
func (l *Loaders) FirstOrdersOfUser(ctx context.Context, u *flashsale.User, first int) (OrderPage, error) {
	return refer(ctx, &l.userFamilies, u.ID, u, ordersPageKind, l.userOrders,
		func(u *flashsale.User) UserOrdersKey { return UserOrdersKey{User: u.ID, First: first} },
		func(pages []OrderPage) {
			var orders []*flashsale.Order
			for _, p := range pages {
				orders = append(orders, p.Orders...)
			}
			l.orderFamilies.add(orderKey, orders)
		})
}

// ListedOrders declares orders a list resolver returns, so that their users, products and
// sales are each read at once.
func (l *Loaders) ListedOrders(orders []*flashsale.Order) { l.orderFamilies.add(orderKey, orders) }

// ListedSales declares sales a list resolver returns, so that their products are read at once.
func (l *Loaders) ListedSales(sales []*flashsale.FlashSale) { l.saleFamilies.add(saleKey, sales) }

// ListedNotifications declares notifications a list resolver returns, so that their orders
// are read at once.
func (l *Loaders) ListedNotifications(ns []*flashsale.Notification) {
	l.notificationFamilies.add(func(n *flashsale.Notification) int64 { return n.ID }, ns)
}

func orderKey(o *flashsale.Order) flashsale.OrderID   { return o.ID }
func userKey(u *flashsale.User) flashsale.UserID      { return u.ID }
func saleKey(s *flashsale.FlashSale) flashsale.SaleID { return s.ID }

// root runs read once per response for the root fields of kind k. With batching off it
// does not run: every key is then its own store call.
func (l *Loaders) root(ctx context.Context, k kind, read func()) {
	if l.batching {
		l.roots[k].Do(read)
	}
}

// rootArguments returns the argument arg of every field named field at the root of the
// query in ctx (aliases, fragments, @skip and @include resolved), parsed. Arguments that do
// not parse are left out: their own resolver reports them.
func rootArguments[K any](ctx context.Context, field, arg string, parse func(string) (K, error)) []K {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	op := graphql.GetOperationContext(ctx)
	if op.Operation == nil || op.Operation.Operation != ast.Query {
		return nil
	}
	var keys []K
	for _, f := range graphql.CollectFields(op, op.Operation.SelectionSet, []string{"Query"}) {
		if f.Name != field {
			continue
		}
		s, ok := f.ArgumentMap(op.Variables)[arg].(string)
		if !ok {
			continue
		}
		if k, err := parse(s); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

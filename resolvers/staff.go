package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

// users answers Query.users: a page of users, filtered by a prefix of email or name.
func (r *queryResolver) users(ctx context.Context, search *string, first *int, after *string) (*model.UserConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if search != nil {
		if prefix, err = flashsale.UserSearch(*search); err != nil {
			return nil, err
		}
	}
	cursor, err := decodeCursor(after, flashsale.ParseUserID)
	if err != nil {
		return nil, err
	}
	users, more, err := r.Resolver.Users.ListUsers(ctx, prefix, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, info := page(users, more, cursor != 0, func(u *flashsale.User) string { return u.ID.String() },
		func(c string, u *flashsale.User) *model.UserEdge { return &model.UserEdge{Cursor: c, Node: u} })
	return &model.UserConnection{Edges: edges, PageInfo: info}, nil
}

// saleOrders answers FlashSale.orders: a page of the sale's orders, newest first.
func (r *flashSaleResolver) saleOrders(ctx context.Context, sale *flashsale.FlashSale, status *flashsale.OrderStatus, first *int, after *string) (*model.OrderConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseOrderID)
	if err != nil {
		return nil, err
	}
	orders, more, err := r.OrderStore.ListSaleOrders(ctx, sale.ID, status, n, cursor)
	if err != nil {
		return nil, err
	}
	loaders.For(ctx).ListedOrders(orders)
	return ordersConnection(orders, more, cursor != 0), nil
}

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
	conn := &model.UserConnection{PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, u := range users {
		conn.Edges = append(conn.Edges, &model.UserEdge{Cursor: encodeCursor(u.ID.String()), Node: u})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn, nil
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
	conn := &model.OrderConnection{PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, o := range orders {
		conn.Edges = append(conn.Edges, &model.OrderEdge{Cursor: encodeCursor(o.ID.String()), Node: o})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn, nil
}

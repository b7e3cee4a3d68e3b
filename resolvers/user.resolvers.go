package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *mutationResolver) Register(ctx context.Context, input flashsale.RegisterInput) (*flashsale.AuthPayload, error) {
	return r.Auth.Register(ctx, input)
}

func (r *mutationResolver) Login(ctx context.Context, email string, password string) (*flashsale.AuthPayload, error) {
	return r.Auth.Login(ctx, email, password)
}

func (r *mutationResolver) RefreshToken(ctx context.Context, refreshToken string) (*flashsale.AuthPayload, error) {
	return r.Auth.Refresh(ctx, refreshToken)
}

func (r *mutationResolver) Logout(ctx context.Context, refreshToken string) (bool, error) {
	if err := r.Auth.Logout(ctx, refreshToken); err != nil {
		return false, err
	}
	return true, nil
}

func (r *notificationResolver) ID(ctx context.Context, obj *flashsale.Notification) (string, error) {
	return flashsale.NotificationIDString(obj.ID), nil
}

func (r *notificationResolver) Order(ctx context.Context, obj *flashsale.Notification) (*flashsale.Order, error) {
	return loaders.For(ctx).OrderOfNotification(ctx, obj)
}

func (r *queryResolver) Me(ctx context.Context) (*flashsale.User, error) {
	v, ok := flashsale.ViewerFromContext(ctx)
	if !ok {
		return nil, nil
	}
	return nullIfNotFound(loaders.For(ctx).Viewer(ctx, v.UserID))
}

func (r *userResolver) Orders(ctx context.Context, obj *flashsale.User, first *int, after *string) (*model.OrderConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	if err := requireSelfOrAdmin(ctx, obj.ID); err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseOrderID)
	if err != nil {
		return nil, err
	}
	var orders []*flashsale.Order
	var more bool
	if cursor == 0 { // first pages of many users batch together
		var page loaders.OrderPage
		page, err = loaders.For(ctx).FirstOrdersOfUser(ctx, obj, n)
		orders, more = page.Orders, page.More
	} else {
		orders, more, err = r.OrderStore.ListUserOrders(ctx, obj.ID, n, cursor)
	}
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

func (r *userResolver) Notifications(ctx context.Context, obj *flashsale.User, first *int, after *string) (*model.NotificationConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	if err := requireSelfOrAdmin(ctx, obj.ID); err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseNotificationID)
	if err != nil {
		return nil, err
	}
	list, more, err := r.NotificationReader.ListNotifications(ctx, obj.ID, n, cursor)
	if err != nil {
		return nil, err
	}
	loaders.For(ctx).ListedNotifications(list)
	conn := &model.NotificationConnection{PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, n := range list {
		conn.Edges = append(conn.Edges, &model.NotificationEdge{Cursor: encodeCursor(flashsale.NotificationIDString(n.ID)), Node: n})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn, nil
}

func (r *Resolver) Mutation() generated.MutationResolver { return &mutationResolver{r} }

func (r *Resolver) Notification() generated.NotificationResolver { return &notificationResolver{r} }

func (r *Resolver) Query() generated.QueryResolver { return &queryResolver{r} }

func (r *Resolver) User() generated.UserResolver { return &userResolver{r} }

type (
	mutationResolver     struct{ *Resolver }
	notificationResolver struct{ *Resolver }
	queryResolver        struct{ *Resolver }
	userResolver         struct{ *Resolver }
)

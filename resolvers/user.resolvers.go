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

func (r *queryResolver) Me(ctx context.Context) (*flashsale.User, error) {
	v, ok := flashsale.ViewerFromContext(ctx)
	if !ok {
		return nil, nil
	}
	return nullIfNotFound(loaders.For(ctx).Users.Load(ctx, v.UserID)())
}

func (r *userResolver) Orders(ctx context.Context, obj *flashsale.User, first *int, after *string) (*model.OrderConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	if v.UserID != obj.ID && v.Role != flashsale.RoleAdmin {
		return nil, flashsale.Errorf(flashsale.EFORBIDDEN, "only the user and admins see a user's orders")
	}
	cursor, err := decodeCursor(after, flashsale.ParseOrderID)
	if err != nil {
		return nil, err
	}
	var orders []*flashsale.Order
	var more bool
	if cursor == 0 { // first pages of many users batch together
		var page loaders.OrderPage
		page, err = loaders.For(ctx).UserOrders.Load(ctx, loaders.UserOrdersKey{User: obj.ID, First: n})()
		orders, more = page.Orders, page.More
	} else {
		orders, more, err = r.OrderStore.ListUserOrders(ctx, obj.ID, n, cursor)
	}
	if err != nil {
		return nil, err
	}
	conn := &model.OrderConnection{PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, o := range orders {
		conn.Edges = append(conn.Edges, &model.OrderEdge{Cursor: encodeCursor(o.ID.String()), Node: o})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn, nil
}

func (r *Resolver) Mutation() generated.MutationResolver { return &mutationResolver{r} }

func (r *Resolver) Query() generated.QueryResolver { return &queryResolver{r} }

func (r *Resolver) User() generated.UserResolver { return &userResolver{r} }

type (
	mutationResolver struct{ *Resolver }
	queryResolver    struct{ *Resolver }
	userResolver     struct{ *Resolver }
)

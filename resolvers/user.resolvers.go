package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
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
	return nullIfNotFound(r.Users.FindUserByID(ctx, v.UserID))
}

func (r *userResolver) Orders(ctx context.Context, obj *flashsale.User, first *int, after *string) (*model.OrderConnection, error) {
	return nil, notImplemented()
}

func (r *Resolver) Mutation() generated.MutationResolver { return &mutationResolver{r} }

func (r *Resolver) Query() generated.QueryResolver { return &queryResolver{r} }

func (r *Resolver) User() generated.UserResolver { return &userResolver{r} }

type (
	mutationResolver struct{ *Resolver }
	queryResolver    struct{ *Resolver }
	userResolver     struct{ *Resolver }
)

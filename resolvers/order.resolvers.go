package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *mutationResolver) PlaceOrder(ctx context.Context, input model.PlaceOrderInput) (*flashsale.Order, error) {
	return nil, notImplemented()
}

func (r *mutationResolver) PlaceFlashSaleOrder(ctx context.Context, input model.PlaceFlashSaleOrderInput) (*flashsale.Order, error) {
	return nil, notImplemented()
}

func (r *mutationResolver) CancelOrder(ctx context.Context, id string) (*flashsale.Order, error) {
	return nil, notImplemented()
}

func (r *orderResolver) User(ctx context.Context, obj *flashsale.Order) (*flashsale.User, error) {
	return nil, notImplemented()
}

func (r *orderResolver) Product(ctx context.Context, obj *flashsale.Order) (*flashsale.Product, error) {
	return nil, notImplemented()
}

func (r *orderResolver) FlashSale(ctx context.Context, obj *flashsale.Order) (*flashsale.FlashSale, error) {
	return nil, notImplemented()
}

func (r *queryResolver) Order(ctx context.Context, id string) (*flashsale.Order, error) {
	return nil, notImplemented()
}

func (r *subscriptionResolver) OrderStatusChanged(ctx context.Context) (<-chan *flashsale.Order, error) {
	return nil, notImplemented()
}

func (r *Resolver) Order() generated.OrderResolver { return &orderResolver{r} }

type orderResolver struct{ *Resolver }

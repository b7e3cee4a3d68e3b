package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *mutationResolver) PlaceOrder(ctx context.Context, input model.PlaceOrderInput) (*flashsale.Order, error) {
	pid, err := flashsale.ParseProductID(input.ProductID)
	if err != nil {
		return nil, err
	}
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.Checkout.PlaceOrder(ctx, v, pid, input.Quantity, input.IdempotencyKey)
}

func (r *mutationResolver) PlaceFlashSaleOrder(ctx context.Context, input model.PlaceFlashSaleOrderInput) (*flashsale.Order, error) {
	sid, err := flashsale.ParseSaleID(input.FlashSaleID)
	if err != nil {
		return nil, err
	}
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.Checkout.PlaceFlashSaleOrder(ctx, v, sid, input.Quantity, input.IdempotencyKey)
}

func (r *mutationResolver) CancelOrder(ctx context.Context, id string) (*flashsale.Order, error) {
	oid, err := flashsale.ParseOrderID(id)
	if err != nil {
		return nil, err
	}
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.Checkout.Cancel(ctx, v, oid)
}

func (r *orderResolver) User(ctx context.Context, obj *flashsale.Order) (*flashsale.User, error) {
	return loaders.For(ctx).UserOfOrder(ctx, obj)
}

func (r *orderResolver) Product(ctx context.Context, obj *flashsale.Order) (*flashsale.Product, error) {
	return loaders.For(ctx).ProductOfOrder(ctx, obj)
}

func (r *orderResolver) FlashSale(ctx context.Context, obj *flashsale.Order) (*flashsale.FlashSale, error) {
	if obj.SaleID == 0 {
		return nil, nil
	}
	return loaders.For(ctx).SaleOfOrder(ctx, obj)
}

func (r *queryResolver) Order(ctx context.Context, id string) (*flashsale.Order, error) {
	oid, err := flashsale.ParseOrderID(id)
	if err != nil {
		return nil, err
	}
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	o, err := nullIfNotFound(loaders.For(ctx).Order(ctx, oid))
	if o != nil && o.UserID != v.UserID && v.Role != flashsale.RoleAdmin {
		return nil, nil // someone else's order answers as if it did not exist
	}
	return o, err
}

func (r *subscriptionResolver) OrderStatusChanged(ctx context.Context) (<-chan *flashsale.Order, error) {
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.OrderFeed.SubscribeOrders(ctx, v.UserID)
}

func (r *Resolver) Order() generated.OrderResolver { return &orderResolver{r} }

type orderResolver struct{ *Resolver }

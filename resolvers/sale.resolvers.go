package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *flashSaleResolver) Product(ctx context.Context, obj *flashsale.FlashSale) (*flashsale.Product, error) {
	return nil, notImplemented()
}

func (r *flashSaleResolver) Remaining(ctx context.Context, obj *flashsale.FlashSale) (int, error) {
	return 0, notImplemented()
}

func (r *flashSaleResolver) Status(ctx context.Context, obj *flashsale.FlashSale) (flashsale.SaleStatus, error) {
	return "", notImplemented()
}

func (r *mutationResolver) CreateFlashSale(ctx context.Context, input model.CreateFlashSaleInput) (*flashsale.FlashSale, error) {
	return nil, notImplemented()
}

func (r *queryResolver) FlashSale(ctx context.Context, id string) (*flashsale.FlashSale, error) {
	return nil, notImplemented()
}

func (r *queryResolver) FlashSales(ctx context.Context, status *flashsale.SaleStatus) ([]*flashsale.FlashSale, error) {
	return nil, notImplemented()
}

func (r *subscriptionResolver) FlashSaleStock(ctx context.Context, flashSaleID string) (<-chan *flashsale.StockUpdate, error) {
	return nil, notImplemented()
}

func (r *Resolver) FlashSale() generated.FlashSaleResolver { return &flashSaleResolver{r} }

func (r *Resolver) Subscription() generated.SubscriptionResolver { return &subscriptionResolver{r} }

type (
	flashSaleResolver    struct{ *Resolver }
	subscriptionResolver struct{ *Resolver }
)

package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *flashSaleResolver) Product(ctx context.Context, obj *flashsale.FlashSale) (*flashsale.Product, error) {
	return loaders.For(ctx).ProductOfSale(ctx, obj)
}

func (r *flashSaleResolver) Remaining(ctx context.Context, obj *flashsale.FlashSale) (int, error) {
	return r.Checkout.SaleRemaining(ctx, obj)
}

func (r *flashSaleResolver) Status(ctx context.Context, obj *flashsale.FlashSale) (flashsale.SaleStatus, error) {
	return r.Checkout.SaleStatus(ctx, obj)
}

func (r *flashSaleResolver) Stats(ctx context.Context, obj *flashsale.FlashSale) (*flashsale.SaleStats, error) {
	return r.Checkout.SaleStats(ctx, obj.ID)
}

func (r *mutationResolver) CreateFlashSale(ctx context.Context, input model.CreateFlashSaleInput) (*flashsale.FlashSale, error) {
	pid, err := flashsale.ParseProductID(input.ProductID)
	if err != nil {
		return nil, err
	}
	sale := &flashsale.FlashSale{
		ProductID: pid, SalePriceCents: input.SalePriceCents, Quantity: input.Quantity,
		PerUserLimit: input.PerUserLimit, StartsAt: input.StartsAt, EndsAt: input.EndsAt,
	}
	if err := r.Checkout.CreateSale(ctx, sale); err != nil {
		return nil, err
	}
	return sale, nil
}

func (r *queryResolver) FlashSale(ctx context.Context, id string) (*flashsale.FlashSale, error) {
	sid, err := flashsale.ParseSaleID(id)
	if err != nil {
		return nil, err
	}
	return nullIfNotFound(r.Checkout.Sale(ctx, sid))
}

func (r *queryResolver) FlashSales(ctx context.Context, status *flashsale.SaleStatus) ([]*flashsale.FlashSale, error) {
	sales, err := r.Checkout.ListSales(ctx, status)
	if err != nil {
		return nil, err
	}
	loaders.For(ctx).ListedSales(sales)
	return sales, nil
}

func (r *subscriptionResolver) FlashSaleStock(ctx context.Context, flashSaleID string) (<-chan *flashsale.StockUpdate, error) {
	sid, err := flashsale.ParseSaleID(flashSaleID)
	if err != nil {
		return nil, err
	}
	sale, err := r.Checkout.Sale(ctx, sid)
	if err != nil {
		return nil, err
	}
	return r.Live.Watch(ctx, flashsale.SalePool(sid), func(ctx context.Context) (int, error) {
		return r.Checkout.SaleRemaining(ctx, sale)
	})
}

func (r *Resolver) FlashSale() generated.FlashSaleResolver { return &flashSaleResolver{r} }

func (r *Resolver) Subscription() generated.SubscriptionResolver { return &subscriptionResolver{r} }

type (
	flashSaleResolver    struct{ *Resolver }
	subscriptionResolver struct{ *Resolver }
)

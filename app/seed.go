package app

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale"
)

// SeedDemo adds a few products when the catalog is empty, so a newcomer has something to see.
func SeedDemo(ctx context.Context, api *API, log *slog.Logger) error {
	existing, _, err := api.Stores.Products.ListProducts(ctx, 1, 0)
	if err != nil || len(existing) > 0 {
		return err
	}
	demo := []flashsale.Product{
		{Name: "Mechanical keyboard", Description: "Hot-swappable, 75% layout.", PriceCents: 12900, Stock: 500},
		{Name: "Noise-cancelling headphones", Description: "Thirty hours of battery.", PriceCents: 24900, Stock: 300},
		{Name: "USB-C dock", Description: "Two screens, one cable.", PriceCents: 8900, Stock: 1000},
	}
	for i := range demo {
		if err := api.Checkout.CreateProduct(ctx, &demo[i]); err != nil {
			return err
		}
	}
	log.Info("seeded demo products", "count", len(demo))
	return nil
}

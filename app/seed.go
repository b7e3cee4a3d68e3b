package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/flashsale/flashsale"
)

// The demo customer SeedDemo ensures, so a newcomer can buy without registering first.
const (
	DemoCustomerEmail    = "buyer@example.com"
	DemoCustomerPassword = "buyer-password"
)

// Demo is what SeedDemo made ready: a flash sale to watch and buy from.
type Demo struct {
	Sale *flashsale.FlashSale
}

// SeedDemo makes a fresh shop worth looking at: a few products when the catalog is empty, a
// demo customer, and a flash sale of the first product that starts a minute from now and runs
// for an hour, unless a sale is already scheduled or running.
func SeedDemo(ctx context.Context, api *API, log *slog.Logger) (*Demo, error) {
	products, _, err := api.Stores.Products.ListProducts(ctx, 1, 0)
	if err != nil {
		return nil, err
	}
	if len(products) == 0 {
		demo := []flashsale.Product{
			{Name: "Mechanical keyboard", Description: "Hot-swappable, 75% layout.", PriceCents: 12900, Stock: 500,
				ImageURL: demoImage("Mechanical keyboard"), Currency: "USD"},
			{Name: "Noise-cancelling headphones", Description: "Thirty hours of battery.", PriceCents: 24900, Stock: 300,
				ImageURL: demoImage("Noise-cancelling headphones"), Currency: "USD"},
			{Name: "USB-C dock", Description: "Two screens, one cable.", PriceCents: 8900, Stock: 1000,
				ImageURL: demoImage("USB-C dock"), Currency: "USD"},
		}
		for i := range demo {
			if err := api.Checkout.CreateProduct(ctx, &demo[i]); err != nil {
				return nil, err
			}
		}
		log.Info("seeded demo products", "count", len(demo))
		products = []*flashsale.Product{&demo[0]}
	}
	_, err = api.Auth.Register(ctx, flashsale.RegisterInput{Email: DemoCustomerEmail, Password: DemoCustomerPassword, Name: "Demo buyer"})
	if err != nil && flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		return nil, fmt.Errorf("demo customer: %w", err)
	}
	sale, err := demoSale(ctx, api, products[0])
	if err != nil {
		return nil, err
	}
	return &Demo{Sale: sale}, nil
}

// demoImage is a placeholder picture naming the product, from a public placeholder service:
// the demo shows where a shop's own pictures go.
func demoImage(name string) string {
	return "https://placehold.co/640x400/png?text=" + url.QueryEscape(name)
}

// demoSale returns a scheduled or running sale, creating one when there is none.
func demoSale(ctx context.Context, api *API, p *flashsale.Product) (*flashsale.FlashSale, error) {
	for _, status := range []flashsale.SaleStatus{flashsale.SaleActive, flashsale.SaleScheduled} {
		sales, err := api.Checkout.ListSales(ctx, &status)
		if err != nil {
			return nil, err
		}
		if len(sales) > 0 {
			return sales[0], nil
		}
	}
	start := time.Now().Add(time.Minute).Truncate(time.Second)
	sale := &flashsale.FlashSale{
		ProductID: p.ID, SalePriceCents: p.PriceCents * 8 / 10, Quantity: 100, PerUserLimit: 2,
		StartsAt: start, EndsAt: start.Add(time.Hour),
	}
	if err := api.Checkout.CreateSale(ctx, sale); err != nil {
		return nil, fmt.Errorf("demo sale: %w", err)
	}
	return sale, nil
}

package resolvers

import (
	"context"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *mutationResolver) CreateProduct(ctx context.Context, input model.CreateProductInput) (*flashsale.Product, error) {
	p := &flashsale.Product{Name: input.Name, PriceCents: input.PriceCents, Stock: input.Stock}
	if input.Description != nil {
		p.Description = *input.Description
	}
	if err := r.Checkout.CreateProduct(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (r *mutationResolver) UpdateProduct(ctx context.Context, id string, input model.UpdateProductInput) (*flashsale.Product, error) {
	pid, err := flashsale.ParseProductID(id)
	if err != nil {
		return nil, err
	}
	return r.Checkout.UpdateProduct(ctx, pid, flashsale.ProductUpdate{
		Name: input.Name, Description: input.Description, PriceCents: input.PriceCents, Stock: input.Stock,
	})
}

func (r *productResolver) Stock(ctx context.Context, obj *flashsale.Product) (int, error) {
	return r.Checkout.ProductRemaining(ctx, obj)
}

func (r *queryResolver) Product(ctx context.Context, id string) (*flashsale.Product, error) {
	pid, err := flashsale.ParseProductID(id)
	if err != nil {
		return nil, err
	}
	return nullIfNotFound(loaders.For(ctx).Product(ctx, pid))
}

func (r *queryResolver) Products(ctx context.Context, first *int, after *string) (*model.ProductConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseProductID)
	if err != nil {
		return nil, err
	}
	products, more, err := r.Catalog.ListProducts(ctx, n, cursor)
	if err != nil {
		return nil, err
	}
	conn := &model.ProductConnection{PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, p := range products {
		conn.Edges = append(conn.Edges, &model.ProductEdge{Cursor: encodeCursor(p.ID.String()), Node: p})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn, nil
}

func (r *subscriptionResolver) ProductStock(ctx context.Context, productID string) (<-chan *flashsale.StockUpdate, error) {
	pid, err := flashsale.ParseProductID(productID)
	if err != nil {
		return nil, err
	}
	p, err := r.Catalog.FindProductByID(ctx, pid)
	if err != nil {
		return nil, err
	}
	return r.Live.Watch(ctx, flashsale.ProductPool(pid), func(ctx context.Context) (int, error) {
		return r.Checkout.ProductRemaining(ctx, p)
	})
}

func (r *Resolver) Product() generated.ProductResolver { return &productResolver{r} }

type productResolver struct{ *Resolver }

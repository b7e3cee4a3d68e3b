package resolvers

import (
	"context"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

func (r *flashSaleResolver) Product(ctx context.Context, obj *flashsale.FlashSale) (*flashsale.Product, error) {
	return loaders.For(ctx).ProductOfSale(ctx, obj)
}

func (r *flashSaleResolver) Remaining(ctx context.Context, obj *flashsale.FlashSale) (int, error) {
	if n, _, ok := loaders.For(ctx).SaleReading(obj.ID); ok {
		return n, nil
	}
	return r.Checkout.SaleRemaining(ctx, obj)
}

func (r *flashSaleResolver) Status(ctx context.Context, obj *flashsale.FlashSale) (flashsale.SaleStatus, error) {
	if _, status, ok := loaders.For(ctx).SaleReading(obj.ID); ok {
		return status, nil
	}
	return r.Checkout.SaleStatus(ctx, obj)
}

func (r *flashSaleResolver) Stats(ctx context.Context, obj *flashsale.FlashSale) (*flashsale.SaleStats, error) {
	return r.Checkout.SaleStats(ctx, obj.ID)
}

func (r *flashSaleResolver) Orders(ctx context.Context, obj *flashsale.FlashSale, status *flashsale.OrderStatus, first *int, after *string) (*model.OrderConnection, error) {
	return r.saleOrders(ctx, obj, status, first, after)
}

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

func (r *mutationResolver) CreateProduct(ctx context.Context, input model.CreateProductInput) (*flashsale.Product, error) {
	p := &flashsale.Product{Name: input.Name, PriceCents: input.PriceCents, Stock: input.Stock}
	if input.Description != nil {
		p.Description = *input.Description
	}
	if input.ImageURL != nil {
		p.ImageURL = *input.ImageURL
	}
	if input.Currency != nil {
		p.Currency = *input.Currency
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
		ImageURL: input.ImageURL, Currency: input.Currency,
	})
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

func (r *mutationResolver) UpdateFlashSale(ctx context.Context, id string, input model.UpdateFlashSaleInput) (*flashsale.FlashSale, error) {
	sid, err := flashsale.ParseSaleID(id)
	if err != nil {
		return nil, err
	}
	return r.Checkout.ChangeSale(ctx, sid, flashsale.SaleChange{
		SalePriceCents: input.SalePriceCents, Quantity: input.Quantity, PerUserLimit: input.PerUserLimit,
		StartsAt: input.StartsAt, EndsAt: input.EndsAt,
	})
}

func (r *mutationResolver) EndFlashSale(ctx context.Context, id string) (*flashsale.FlashSale, error) {
	sid, err := flashsale.ParseSaleID(id)
	if err != nil {
		return nil, err
	}
	return r.Checkout.EndSale(ctx, sid)
}

func (r *mutationResolver) CancelFlashSale(ctx context.Context, id string) (*flashsale.FlashSale, error) {
	sid, err := flashsale.ParseSaleID(id)
	if err != nil {
		return nil, err
	}
	return r.Checkout.CancelSale(ctx, sid)
}

func (r *mutationResolver) RetireProduct(ctx context.Context, id string) (*flashsale.Product, error) {
	pid, err := flashsale.ParseProductID(id)
	if err != nil {
		return nil, err
	}
	return r.Checkout.RetireProduct(ctx, pid)
}

func (r *notificationResolver) ID(ctx context.Context, obj *flashsale.Notification) (string, error) {
	return flashsale.NotificationIDString(obj.ID), nil
}

func (r *notificationResolver) Order(ctx context.Context, obj *flashsale.Notification) (*flashsale.Order, error) {
	return loaders.For(ctx).OrderOfNotification(ctx, obj)
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

func (r *orderResolver) ExpiresAt(ctx context.Context, obj *flashsale.Order) (*time.Time, error) {
	return r.Checkout.ExpiresAt(obj), nil
}

func (r *productResolver) Stock(ctx context.Context, obj *flashsale.Product) (int, error) {
	return r.Checkout.ProductRemaining(ctx, obj)
}

func (r *productResolver) ImageURL(ctx context.Context, obj *flashsale.Product) (*string, error) {
	if obj.ImageURL == "" {
		return nil, nil
	}
	return &obj.ImageURL, nil
}

func (r *productResolver) ActiveSale(ctx context.Context, obj *flashsale.Product) (*flashsale.FlashSale, error) {
	return loaders.For(ctx).ActiveSaleOfProduct(ctx, obj)
}

func (r *queryResolver) Me(ctx context.Context) (*flashsale.User, error) {
	v, ok := flashsale.ViewerFromContext(ctx)
	if !ok {
		return nil, nil
	}
	return nullIfNotFound(loaders.For(ctx).Viewer(ctx, v.UserID))
}

func (r *queryResolver) ServerTime(ctx context.Context) (*time.Time, error) {
	now := time.Now()
	return &now, nil
}

func (r *queryResolver) Node(ctx context.Context, id string) (model.Node, error) {
	return node(ctx, id)
}

func (r *queryResolver) Product(ctx context.Context, id string) (*flashsale.Product, error) {
	pid, err := flashsale.ParseProductID(id)
	if err != nil {
		return nil, err
	}
	return nullIfNotFound(loaders.For(ctx).Product(ctx, pid))
}

func (r *queryResolver) Products(ctx context.Context, first *int, after *string, includeRetired *bool) (*model.ProductConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseProductID)
	if err != nil {
		return nil, err
	}
	products, more, err := r.Catalog.ListCatalog(ctx, n, cursor, includeRetired != nil && *includeRetired)
	if err != nil {
		return nil, err
	}
	loaders.For(ctx).ListedProducts(products)
	edges, info := page(products, more, cursor != 0, func(p *flashsale.Product) string { return p.ID.String() },
		func(c string, p *flashsale.Product) *model.ProductEdge { return &model.ProductEdge{Cursor: c, Node: p} })
	return &model.ProductConnection{Edges: edges, PageInfo: info}, nil
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

func (r *queryResolver) FlashSalesConnection(ctx context.Context, first *int, after *string, status *flashsale.SaleStatus) (*model.FlashSaleConnection, error) {
	n, err := flashsale.PageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := decodeCursor(after, flashsale.ParseSaleID)
	if err != nil {
		return nil, err
	}
	sales, more, err := r.Checkout.SalesPage(ctx, n, cursor, status)
	if err != nil {
		return nil, err
	}
	loaders.For(ctx).ListedSales(sales)
	return salesConnection(sales, more, cursor != 0), nil
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

func (r *queryResolver) Users(ctx context.Context, search *string, first *int, after *string) (*model.UserConnection, error) {
	return r.users(ctx, search, first, after)
}

func (r *stockUpdateResolver) ID(ctx context.Context, obj *flashsale.StockUpdate) (string, error) {
	if obj.Sale != nil {
		return obj.Sale.ID.String(), nil
	}
	return obj.ProductID.String(), nil
}

func (r *stockUpdateResolver) FlashSaleID(ctx context.Context, obj *flashsale.StockUpdate) (*string, error) {
	if obj.Sale == nil {
		return nil, nil
	}
	id := obj.Sale.ID.String()
	return &id, nil
}

func (r *stockUpdateResolver) FlashSale(ctx context.Context, obj *flashsale.StockUpdate) (*flashsale.FlashSale, error) {
	if obj.Sale == nil {
		return nil, nil
	}
	loaders.For(ctx).NoteStockUpdate(obj)
	return obj.Sale, nil
}

func (r *stockUpdateResolver) Status(ctx context.Context, obj *flashsale.StockUpdate) (*flashsale.SaleStatus, error) {
	if obj.Sale == nil {
		return nil, nil
	}
	return &obj.Status, nil
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
	return r.StockFeed.WatchSale(ctx, sale, func(ctx context.Context) (int, error) {
		return r.Checkout.SaleRemaining(ctx, sale)
	}, func(ctx context.Context) (*flashsale.FlashSale, error) {
		return r.Checkout.Sale(ctx, sid)
	})
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
	return r.StockFeed.WatchProduct(ctx, pid, func(ctx context.Context) (int, error) {
		return r.Checkout.ProductRemaining(ctx, p)
	})
}

func (r *subscriptionResolver) OrderStatusChanged(ctx context.Context) (<-chan *flashsale.Order, error) {
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.OrderFeed.SubscribeOrders(ctx, v.UserID)
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
	return ordersConnection(orders, more, cursor != 0), nil
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
	edges, info := page(list, more, cursor != 0, func(n *flashsale.Notification) string { return flashsale.NotificationIDString(n.ID) },
		func(c string, n *flashsale.Notification) *model.NotificationEdge {
			return &model.NotificationEdge{Cursor: c, Node: n}
		})
	return &model.NotificationConnection{Edges: edges, PageInfo: info}, nil
}

func (r *Resolver) FlashSale() generated.FlashSaleResolver { return &flashSaleResolver{r} }

func (r *Resolver) Mutation() generated.MutationResolver { return &mutationResolver{r} }

func (r *Resolver) Notification() generated.NotificationResolver { return &notificationResolver{r} }

func (r *Resolver) Order() generated.OrderResolver { return &orderResolver{r} }

func (r *Resolver) Product() generated.ProductResolver { return &productResolver{r} }

func (r *Resolver) Query() generated.QueryResolver { return &queryResolver{r} }

func (r *Resolver) StockUpdate() generated.StockUpdateResolver { return &stockUpdateResolver{r} }

func (r *Resolver) Subscription() generated.SubscriptionResolver { return &subscriptionResolver{r} }

func (r *Resolver) User() generated.UserResolver { return &userResolver{r} }

type (
	flashSaleResolver    struct{ *Resolver }
	mutationResolver     struct{ *Resolver }
	notificationResolver struct{ *Resolver }
	orderResolver        struct{ *Resolver }
	productResolver      struct{ *Resolver }
	queryResolver        struct{ *Resolver }
	stockUpdateResolver  struct{ *Resolver }
	subscriptionResolver struct{ *Resolver }
	userResolver         struct{ *Resolver }
)

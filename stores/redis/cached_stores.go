package redis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// ProductCache is a flashsale.ProductStore that reads through Redis.
type ProductCache struct {
	flashsale.ProductStore // lists and everything else pass through
	c                      *cache[flashsale.ProductID, flashsale.Product]
}

// NewProductCache decorates store with the read cache.
func NewProductCache(store flashsale.ProductStore, client goredis.UniversalClient, cfg CacheConfig, log *slog.Logger) *ProductCache {
	c := newCache[flashsale.ProductID, flashsale.Product](client, KindProduct, "product", cfg, log)
	c.keepLocal()
	return &ProductCache{ProductStore: store, c: c}
}

// Peek returns the product if this process holds a local copy (the loaders answer from it
// without waiting for a batch).
func (s *ProductCache) Peek(id flashsale.ProductID) (*flashsale.Product, bool) { return s.c.peek(id) }

// FindProductByID reads through the cache.
func (s *ProductCache) FindProductByID(ctx context.Context, id flashsale.ProductID) (*flashsale.Product, error) {
	vs, errs := s.FindProductsByIDs(ctx, []flashsale.ProductID{id})
	return vs[0], errs[0]
}

// FindProductsByIDs reads the batch with one MGET and the misses from the store.
func (s *ProductCache) FindProductsByIDs(ctx context.Context, ids []flashsale.ProductID) ([]*flashsale.Product, []error) {
	return s.c.load(ctx, ids, s.ProductStore.FindProductsByIDs)
}

// CreateProduct writes through and drops any negative entry for the new id.
func (s *ProductCache) CreateProduct(ctx context.Context, p *flashsale.Product) error {
	if err := s.ProductStore.CreateProduct(ctx, p); err != nil {
		return err
	}
	s.c.invalidate(ctx, p.ID)
	return nil
}

// UpdateProduct writes through and drops the entry once the write committed.
func (s *ProductCache) UpdateProduct(ctx context.Context, id flashsale.ProductID, u flashsale.ProductUpdate, follow func(context.Context, *flashsale.Product) error) (*flashsale.Product, error) {
	p, err := s.ProductStore.UpdateProduct(ctx, id, u, follow)
	if err == nil {
		s.c.invalidate(ctx, id)
	}
	return p, err
}

// SaleCache is a flashsale.SaleStore that reads through Redis.
type SaleCache struct {
	flashsale.SaleStore
	c *cache[flashsale.SaleID, flashsale.FlashSale]
}

// NewSaleCache decorates store with the read cache.
func NewSaleCache(store flashsale.SaleStore, client goredis.UniversalClient, cfg CacheConfig, log *slog.Logger) *SaleCache {
	c := newCache[flashsale.SaleID, flashsale.FlashSale](client, KindSale, "flash sale", cfg, log)
	c.keepLocal()
	return &SaleCache{SaleStore: store, c: c}
}

// Peek returns the sale if this process holds a local copy.
func (s *SaleCache) Peek(id flashsale.SaleID) (*flashsale.FlashSale, bool) { return s.c.peek(id) }

// FindSaleByID reads through the cache.
func (s *SaleCache) FindSaleByID(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	vs, errs := s.FindSalesByIDs(ctx, []flashsale.SaleID{id})
	return vs[0], errs[0]
}

// FindSalesByIDs reads the batch with one MGET and the misses from the store.
func (s *SaleCache) FindSalesByIDs(ctx context.Context, ids []flashsale.SaleID) ([]*flashsale.FlashSale, []error) {
	return s.c.load(ctx, ids, s.SaleStore.FindSalesByIDs)
}

// CreateSale writes through and drops any negative entry for the new id.
func (s *SaleCache) CreateSale(ctx context.Context, sale *flashsale.FlashSale) error {
	if err := s.SaleStore.CreateSale(ctx, sale); err != nil {
		return err
	}
	s.c.invalidate(ctx, sale.ID)
	return nil
}

// UserCache is a flashsale.UserStore that reads users by id through Redis. Password hashes
// never enter the cache: cached users come back without one, and lookups by email (logins)
// always read PostgreSQL.
type UserCache struct {
	flashsale.UserStore
	c *cache[flashsale.UserID, flashsale.User]
}

// NewUserCache decorates store with the read cache.
func NewUserCache(store flashsale.UserStore, client goredis.UniversalClient, cfg CacheConfig, log *slog.Logger) *UserCache {
	c := newCache[flashsale.UserID, flashsale.User](client, KindUser, "user", cfg, log)
	c.keepLocal()
	return &UserCache{UserStore: store, c: c}
}

// Peek returns the user if this process holds a local copy.
func (s *UserCache) Peek(id flashsale.UserID) (*flashsale.User, bool) { return s.c.peek(id) }

// FindUserByID reads through the cache.
func (s *UserCache) FindUserByID(ctx context.Context, id flashsale.UserID) (*flashsale.User, error) {
	vs, errs := s.FindUsersByIDs(ctx, []flashsale.UserID{id})
	return vs[0], errs[0]
}

// FindUsersByIDs reads the batch with one MGET and the misses from the store.
func (s *UserCache) FindUsersByIDs(ctx context.Context, ids []flashsale.UserID) ([]*flashsale.User, []error) {
	return s.c.load(ctx, ids, func(ctx context.Context, ids []flashsale.UserID) ([]*flashsale.User, []error) {
		users, errs := s.UserStore.FindUsersByIDs(ctx, ids)
		for i, u := range users {
			if u != nil {
				stripped := *u
				stripped.PasswordHash = ""
				users[i] = &stripped
			}
		}
		return users, errs
	})
}

// CreateUser writes through and drops any negative entry for the new id.
func (s *UserCache) CreateUser(ctx context.Context, u *flashsale.User) error {
	if err := s.UserStore.CreateUser(ctx, u); err != nil {
		return err
	}
	s.c.invalidate(ctx, u.ID)
	return nil
}

// UpdateCredentials sets a user's role and password hash in the store it decorates (which
// must have the method, as the PostgreSQL one does) and drops the user's entry: the next
// sign-in's tokens must carry the new role, on every process.
func (s *UserCache) UpdateCredentials(ctx context.Context, id flashsale.UserID, role flashsale.Role, passwordHash string) error {
	store, ok := s.UserStore.(interface {
		UpdateCredentials(context.Context, flashsale.UserID, flashsale.Role, string) error
	})
	if !ok {
		return fmt.Errorf("update credentials of user %d: the store %T cannot", id, s.UserStore)
	}
	if err := store.UpdateCredentials(ctx, id, role, passwordHash); err != nil {
		return err
	}
	s.c.invalidate(ctx, id)
	return nil
}

// OrderCache is a flashsale.OrderStore whose batch reads by id (the dataloaders') go through
// Redis. Single lookups (FindOrderByID), lists and the checkout's own reads go to PostgreSQL:
// they must see an order the moment it commits. Every status change and insert made through
// it drops the order's entry.
type OrderCache struct {
	flashsale.OrderStore
	c *cache[flashsale.OrderID, flashsale.Order]
}

// NewOrderCache decorates store with the read cache. Orders change with every payment, so
// their entries live a short while (a minute unless cfg says otherwise).
func NewOrderCache(store flashsale.OrderStore, client goredis.UniversalClient, cfg CacheConfig, log *slog.Logger) *OrderCache {
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	c := newCache[flashsale.OrderID, flashsale.Order](client, KindOrder, "order", cfg, log)
	c.negatives = false
	return &OrderCache{OrderStore: store, c: c}
}

// FindOrdersByIDs reads the batch with one MGET and the misses from the store.
func (s *OrderCache) FindOrdersByIDs(ctx context.Context, ids []flashsale.OrderID) ([]*flashsale.Order, []error) {
	return s.c.load(ctx, ids, s.OrderStore.FindOrdersByIDs)
}

// TransitionOrder writes through and drops the entry once the move committed.
func (s *OrderCache) TransitionOrder(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error) {
	o, err := s.OrderStore.TransitionOrder(ctx, id, from, to)
	if err == nil {
		s.c.invalidate(ctx, id)
	}
	return o, err
}

// SettleOrder writes through and drops the entry once a settlement committed: a refund
// shows on the order.
func (s *OrderCache) SettleOrder(ctx context.Context, id flashsale.OrderID, refunded bool) (*flashsale.Order, bool, error) {
	o, settled, err := s.OrderStore.SettleOrder(ctx, id, refunded)
	if settled {
		s.c.invalidate(ctx, id)
	}
	return o, settled, err
}

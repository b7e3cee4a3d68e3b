package flashsale

// Stores are the entity stores as one set, which is how the GraphQL layer's dataloaders take
// them. The same set may read the database directly or through a cache.
type Stores struct {
	Users    UserStore
	Products ProductStore
	Sales    SaleStore
	Orders   OrderStore
}

package loaders

import (
	"context"

	"github.com/flashsale/flashsale"
)

// ActiveSaleOfProduct answers Product.activeSale: the product's sale whose window is open
// now, or nil. The products of one list (a page of the catalog, the products of a list of
// sales or orders) are asked about at once, one statement per shard.
func (l *Loaders) ActiveSaleOfProduct(ctx context.Context, p *flashsale.Product) (*flashsale.FlashSale, error) {
	return refer(ctx, &l.productFamilies, p.ID, p, activeSaleKind, l.activeSales,
		func(p *flashsale.Product) flashsale.ProductID { return p.ID },
		func(sales []*flashsale.FlashSale) { l.saleFamilies.add(saleKey, nonNil(sales)) })
}

// ListedProducts declares products a list resolver returns, so that what they refer to is
// read at once; each is also kept, so that a sale of one of them finds its product without
// reading it again.
func (l *Loaders) ListedProducts(products []*flashsale.Product) {
	l.products.prime(products, productKey)
	l.productFamilies.add(productKey, products)
}

// foundProducts makes the products a reference read a family in turn.
func (l *Loaders) foundProducts(products []*flashsale.Product) {
	l.productFamilies.add(productKey, products)
}

func productKey(p *flashsale.Product) flashsale.ProductID { return p.ID }

func nonNil[V any](values []*V) []*V {
	out := values[:0:0]
	for _, v := range values {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

package resolvers

import (
	"context"
	"strings"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/loaders"
	"github.com/flashsale/flashsale/graph/model"
)

// node finds the object with a global id. An id says its kind by its prefix ("usr_", "prd_",
// "sal_", "ord_"); a malformed id, or one of a kind that is not a Node, is BAD_USER_INPUT,
// and a well-formed id of nothing is null, as each type's own lookup answers.
//
// Each kind keeps the authorization of the type's own query: products and sales are public;
// a user is seen by themselves and admins (as `me` shows only the viewer), an order by its
// owner and admins (as `order(id:)`). Both need a signed-in viewer (UNAUTHENTICATED), and
// someone else's answers null, as if it did not exist, so that ids cannot be probed.
func node(ctx context.Context, id string) (model.Node, error) {
	kind, _, _ := strings.Cut(id, "_")
	l := loaders.For(ctx)
	switch kind {
	case "prd":
		pid, err := flashsale.ParseProductID(id)
		if err != nil {
			return nil, err
		}
		return nodeOrNull(l.ProductNode(ctx, pid))
	case "sal":
		sid, err := flashsale.ParseSaleID(id)
		if err != nil {
			return nil, err
		}
		return nodeOrNull(l.SaleNode(ctx, sid))
	case "usr":
		uid, err := flashsale.ParseUserID(id)
		if err != nil {
			return nil, err
		}
		v, err := flashsale.RequireViewer(ctx)
		if err != nil {
			return nil, err
		}
		if v.UserID != uid && v.Role != flashsale.RoleAdmin {
			return nil, nil
		}
		return nodeOrNull(l.UserNode(ctx, uid))
	case "ord":
		oid, err := flashsale.ParseOrderID(id)
		if err != nil {
			return nil, err
		}
		v, err := flashsale.RequireViewer(ctx)
		if err != nil {
			return nil, err
		}
		o, err := l.OrderNode(ctx, oid)
		if o != nil && o.UserID != v.UserID && v.Role != flashsale.RoleAdmin {
			return nil, nil
		}
		return nodeOrNull(o, err)
	}
	return nil, flashsale.Errorf(flashsale.EINVALID, "%q is not the id of a user, product, flash sale or order", truncate(id, 40))
}

// nodeOrNull is nullIfNotFound for node: a missing object is a nil interface, never an
// interface holding a nil pointer.
func nodeOrNull[T any](v *T, err error) (model.Node, error) {
	v, err = nullIfNotFound(v, err)
	if v == nil || err != nil {
		return nil, err
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// salesConnection is a page of flash sales as a FlashSaleConnection.
func salesConnection(sales []*flashsale.FlashSale, more, paged bool) *model.FlashSaleConnection {
	edges, info := page(sales, more, paged, func(s *flashsale.FlashSale) string { return s.ID.String() },
		func(c string, s *flashsale.FlashSale) *model.FlashSaleEdge {
			return &model.FlashSaleEdge{Cursor: c, Node: s}
		})
	return &model.FlashSaleConnection{Edges: edges, PageInfo: info}
}

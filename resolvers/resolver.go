// Package resolvers holds the hand-written GraphQL resolvers. They stay thin: GraphQL
// arguments in, one domain call, GraphQL types out. Rules live in the root package and in
// auth/ and checkout/; storage lives in stores/.
package resolvers

import (
	"context"
	"encoding/base64"

	"github.com/flashsale/flashsale/checkout"
	"github.com/flashsale/flashsale/stockfeed"

	"github.com/flashsale/flashsale"
)

// Resolver is the root resolver; its fields are everything the resolvers call.
type Resolver struct {
	Auth    flashsale.AuthService
	Users   flashsale.UserStore
	Catalog flashsale.ProductStore
	// OrderStore is not called Orders: that name is taken by User.orders' resolver method.
	OrderStore flashsale.OrderStore
	Checkout   *checkout.Service
	// StockFeed shapes stock subscriptions; OrderFeed streams a buyer's order changes.
	StockFeed *stockfeed.Stock
	OrderFeed OrderFeed
	// Notifications reads the notifications the notification worker stored.
	NotificationReader flashsale.NotificationReader
}

// OrderFeed streams the changes of one user's orders until ctx ends.
type OrderFeed interface {
	SubscribeOrders(ctx context.Context, user flashsale.UserID) (<-chan *flashsale.Order, error)
}

// requireSelfOrAdmin lets a user see their own things, and admins everyone's.
func requireSelfOrAdmin(ctx context.Context, owner flashsale.UserID) error {
	v, err := flashsale.RequireViewer(ctx)
	if err != nil {
		return err
	}
	if v.UserID != owner && v.Role != flashsale.RoleAdmin {
		return flashsale.Errorf(flashsale.EFORBIDDEN, "only the user and admins see this")
	}
	return nil
}

// Cursors are opaque to clients: base64 of the public id of the last node on the page.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor[ID any](after *string, parse func(string) (ID, error)) (ID, error) {
	var zero ID
	if after == nil || *after == "" {
		return zero, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil {
		return zero, flashsale.Errorf(flashsale.EINVALID, "after is not a valid cursor")
	}
	id, err := parse(string(raw))
	if err != nil {
		return zero, flashsale.Errorf(flashsale.EINVALID, "after is not a valid cursor")
	}
	return id, nil
}

// nullIfNotFound turns NOT_FOUND into a null answer, as nullable lookups by id promise.
func nullIfNotFound[T any](v *T, err error) (*T, error) {
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		return nil, nil
	}
	return v, err
}

package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/flashsale/flashsale"
)

// hasRole implements @hasRole: UNAUTHENTICATED without a viewer, FORBIDDEN without the role.
func hasRole(ctx context.Context, _ any, next graphql.Resolver, role flashsale.Role) (any, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	if !v.Role.Has(role) {
		return nil, flashsale.Errorf(flashsale.EFORBIDDEN, "this needs the %s role", role)
	}
	return next(ctx)
}

// authenticated implements @authenticated: UNAUTHENTICATED without a viewer.
func authenticated(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if _, err := requireViewer(ctx); err != nil {
		return nil, err
	}
	return next(ctx)
}

package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
)

// Limits bound what one operation may ask for.
const (
	// ComplexityLimit: every field costs 1, a list costs its page size times its elements, and
	// a password check costs 50 (bcrypt is slow by design, so an alias flood of logins is the
	// cheapest denial of service). A page of 100 products with every field fits.
	ComplexityLimit = 1000
	// MaxDepth: the deepest useful query (me → orders → edges → node → flashSale → product →
	// name) is 7 levels; introspection is not counted, since the playground's is deep.
	MaxDepth = 12
	// passwordCost is the complexity of a field that hashes or checks a password.
	passwordCost = 50
	// unboundedListSize is what a list without a page size is assumed to hold.
	unboundedListSize = 50
)

// complexity sets the costs that differ from one per field.
func complexity() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	page := func(child int, first *int) int {
		n := flashsale.DefaultPageSize
		if first != nil && *first > 0 {
			n = *first
		}
		return 1 + n*child
	}
	c.Query.Products = func(child int, first *int, _ *string) int { return page(child, first) }
	c.User.Orders = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.FlashSales = func(child int, _ *flashsale.SaleStatus) int { return 1 + unboundedListSize*child }
	c.Mutation.Login = func(child int, _, _ string) int { return passwordCost + child }
	c.Mutation.Register = func(child int, _ flashsale.RegisterInput) int { return passwordCost + child }
	return c
}

// depthLimit refuses operations nested deeper than max, before any resolver runs.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, d.max+1); depth > d.max {
		err := gqlerror.Errorf("operation is nested %d levels deep; the limit is %d", depth, d.max)
		err.Extensions = map[string]any{"code": flashsale.ECOMPLEXITY}
		return err
	}
	return nil
}

// selectionDepth returns the depth of a selection set, giving up once it passes stop (so a
// fragment bomb costs no more than the limit to measure).
func selectionDepth(set ast.SelectionSet, stop int) int {
	if stop <= 0 {
		return 0
	}
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.Name) >= 2 && s.Name[:2] == "__" {
				continue
			}
			d = 1 + selectionDepth(s.SelectionSet, stop-1)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, stop)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, stop)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

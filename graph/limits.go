package graph

import (
	"context"

	"strings"

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
	// cheapest denial of service). A page of 100 products with every field (1,301) fits;
	// 1,000 aliases of `me { id }` (2,000) do not.
	ComplexityLimit = 1500
	// MaxSelections bounds the fields of an operation with every fragment spread expanded.
	// It is checked, in time linear in the document, before the complexity walk, which
	// expands fragments one by one and so takes exponential time on a fragment bomb.
	MaxSelections = 5000
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

// shapeLimit refuses, before any resolver and before the complexity walk, operations nested
// deeper than maxDepth or with more than maxSelections fields once fragments are expanded.
// Each fragment is measured once (its size and depth do not depend on where it is spread),
// so a fragment bomb costs no more to measure than its text.
type shapeLimit struct{ maxDepth, maxSelections int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = shapeLimit{}

func (shapeLimit) ExtensionName() string                   { return "ShapeLimit" }
func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := measurer{memo: map[string]shape{}}
	sh := m.measure(oc.Operation.SelectionSet)
	switch {
	case sh.depth > l.maxDepth:
		return complexityError("operation is nested %d levels deep; the limit is %d", sh.depth, l.maxDepth)
	case sh.size > l.maxSelections:
		return complexityError("operation selects more than %d fields once fragments are expanded", l.maxSelections)
	}
	return nil
}

func complexityError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": flashsale.ECOMPLEXITY}
	return err
}

// shape is a selection set's depth and its field count with fragments expanded, the count
// saturating at sizeCap so that it cannot overflow.
type shape struct{ depth, size int }

const sizeCap = 1 << 30

type measurer struct{ memo map[string]shape }

func (m measurer) measure(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var sh shape
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue // introspection: the playground's query is deep, and harmless
			}
			sh = m.measure(s.SelectionSet)
			sh.depth++
			sh.size++
		case *ast.InlineFragment:
			sh = m.measure(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			var ok bool
			if sh, ok = m.memo[s.Name]; !ok {
				m.memo[s.Name] = shape{} // validation has refused cycles; this guards anyway
				sh = m.measure(s.Definition.SelectionSet)
				m.memo[s.Name] = sh
			}
		}
		out.depth = max(out.depth, sh.depth)
		out.size = min(out.size+sh.size, sizeCap)
	}
	return out
}

package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
)

// Limits bound what one operation may ask for.
const (
	// ComplexityLimit: every field costs 1, a list costs its page size times its elements, and
	// a password check costs 50 (bcrypt is slow by design; MaxPasswordChecks also allows only
	// one an operation). A page of 100 products with every field (1,301) fits;
	// 1,000 aliases of `me { id }` (2,000) do not.
	ComplexityLimit = 1500
	// MaxQueryBytes bounds a document's text, checked before it is parsed. The longest a
	// client needs is a createProduct with its 10,000-byte description written inline, and
	// large values belong in variables anyway. The parser reads a run of comments whole
	// before its token limit stops it, so without this a megabyte of them would be read.
	MaxQueryBytes = 64 << 10
	// MaxTokens bounds a document's tokens, and so the cost of parsing one and of the
	// validation rules that are linear in it (BenchmarkWorstAccepted). The playground's introspection query has about 180; the largest document sent
	// to this API, the loaders benchmark's 100 order lookups, about 2,800.
	MaxTokens = 5000
	// MaxSelections bounds the selections validation walks: fields (aliased or not,
	// introspection included), fragment spreads and inline fragments, with every fragment
	// expanded, summed over the document's operations and fragment definitions. Validation
	// and the complexity walk are linear in it, and the complexity walk, which expands
	// fragments one by one, exponential in the text of a fragment bomb. An operation within
	// ComplexityLimit selects at most 1,500 fields; the playground's introspection query
	// walks about 500.
	MaxSelections = 2000
	// MaxMergePairs bounds the pairs of same-named fields validation compares (the
	// OverlappingFieldsCanBeMerged rule compares every pair sharing a response name in one
	// selection set, fragments merged): 100,000 `__typename`s would be 5 billion. A page
	// of products asking for every field has none, nor has the introspection query; a
	// selection set spreading twenty fragments that each ask for `id` has 190.
	MaxMergePairs = 5000
	// MaxPasswordChecks: bcrypt is slow by design, so an operation may run one password
	// check (a field marked @checksPassword: login, register); a client signs in once.
	MaxPasswordChecks = 1
	// MaxDepth: the deepest useful query (me → orders → edges → node → flashSale → product →
	// name) is 7 levels; what lies under an introspection field is not counted, since the
	// playground's is deep and gqlparser's MaxIntrospectionDepth rule bounds it.
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
	c.Query.Products = func(child int, first *int, _ *string, _ *bool) int { return page(child, first) }
	c.Query.Users = func(child int, _ *string, first *int, _ *string) int { return page(child, first) }
	c.FlashSale.Orders = func(child int, _ *flashsale.OrderStatus, first *int, _ *string) int { return page(child, first) }
	c.User.Orders = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.FlashSales = func(child int, _ *flashsale.SaleStatus) int { return 1 + unboundedListSize*child }
	c.Query.FlashSalesConnection = func(child int, first *int, _ *string, _ *flashsale.SaleStatus) int {
		return page(child, first)
	}
	c.Mutation.Login = func(child int, _, _ string) int { return passwordCost + child }
	c.Mutation.Register = func(child int, _ flashsale.RegisterInput) int { return passwordCost + child }
	return c
}

// queryLimits refuses, before the document is validated and before any resolver, documents
// that would cost more to validate or execute than any client of this API needs: longer than
// maxQueryBytes, more than maxTokens tokens, more selections than maxSelections once
// fragments are expanded, more same-named field pairs than MaxMergePairs, nesting deeper
// than maxDepth, or more than MaxPasswordChecks password checks. gqlgen validates a document
// before any extension sees it, and some validation rules take time quadratic in it, so the
// limits parse the document themselves (a second parse on a parsed-query cache miss; a hit
// skips both) and measure it in linear time.
type queryLimits struct {
	maxQueryBytes, maxTokens, maxSelections, maxDepth int
	passwordFields                                    map[ast.Operation]map[string]bool
	// parsed reports whether a document has already passed the limits and validation.
	parsed func(query string) bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = queryLimits{}

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l queryLimits) MutateOperationParameters(_ context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Query == "" || l.parsed(params.Query) {
		return nil // no query is gqlgen's to refuse; a parsed one passed before
	}
	if len(params.Query) > l.maxQueryBytes {
		return complexityError("the query is longer than %d bytes; send large values as variables", l.maxQueryBytes)
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, l.maxTokens)
	if err != nil {
		gqlErr, ok := err.(*gqlerror.Error)
		if !ok {
			gqlErr = gqlerror.Errorf("the query could not be parsed")
		}
		if strings.HasPrefix(gqlErr.Message, "exceeded token limit") {
			return complexityError("the query has more than %d tokens", l.maxTokens)
		}
		errcode.Set(gqlErr, errcode.ParseFailed)
		return gqlErr
	}
	return l.check(doc)
}

// check measures doc against the limits.
func (l queryLimits) check(doc *ast.QueryDocument) *gqlerror.Error {
	m := measureDocument(doc, l.passwordFields, l.maxSelections, MaxMergePairs)
	switch {
	case m.cycle != "":
		err := gqlerror.Errorf("cannot spread fragment %q within itself", m.cycle)
		errcode.Set(err, errcode.ValidationFailed)
		return err
	case m.walked > l.maxSelections:
		return complexityError("the query selects more than %d fields once fragments are expanded", l.maxSelections)
	case m.depth > l.maxDepth:
		return complexityError("the query is nested %d levels deep; the limit is %d", m.depth, l.maxDepth)
	case m.mergePairs > MaxMergePairs:
		return complexityError("the query asks for the same field too many times in one selection")
	case m.passwordChecks > MaxPasswordChecks:
		return complexityError("an operation may check one password; send one login or register per request")
	}
	return nil
}

func complexityError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": flashsale.ECOMPLEXITY}
	return err
}

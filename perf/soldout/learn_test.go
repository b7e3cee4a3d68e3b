package soldout

import (
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// The handler learns only operations whose answer the variables cannot change beyond what it
// reads itself: one root field, its input from one variable, no directives or defaults.
func TestLearnsOnlyALonePlaceOrder(t *testing.T) {
	for _, c := range []struct {
		query, want string // want: the variable, "" for not learned
	}{
		{`mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`, "in"},
		{`mutation Buy($o: PlaceFlashSaleOrderInput!) { mine: placeFlashSaleOrder(input: $o) { id ...F } } fragment F on Order { status }`, "o"},
		{`query($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!) { placeOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput) { placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput! = {flashSaleId: "x", quantity: 1, idempotencyKey: "k"}) { placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!, $x: Boolean!) { placeFlashSaleOrder(input: $in) @include(if: $x) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!) @cached { placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) @skip(if: false) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!) { a: placeFlashSaleOrder(input: $in) { id } b: placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!) { ...M } fragment M on Mutation { placeFlashSaleOrder(input: $in) { id } }`, ""},
		{`mutation { placeFlashSaleOrder(input: {flashSaleId: "x", quantity: 1, idempotencyKey: "k"}) { id } }`, ""},
		{`mutation($in: PlaceFlashSaleOrderInput!, $other: String) { placeFlashSaleOrder(input: $in) { id } }`, ""},
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: c.query})
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		got, ok := lonePlaceOrder(doc.Operations[0])
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: learned %q, %v; want %q", c.query, got, ok, c.want)
		}
	}
}

package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// controlCharacters are what no key, email or name may hold: NUL (which PostgreSQL refuses
// outright), other C0 controls, DEL and a C1 control.
var controlCharacters = map[string]string{
	"NUL": "\x00", "BEL": "\x07", "ESC": "\x1b", "line feed": "\n", "DEL": "\x7f", "C1 NEL": "\u0085",
}

// Every text input refuses control characters with BAD_USER_INPUT naming the field, never
// INTERNAL, and writes nothing.
func TestControlCharactersAreRefused(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	buyer := customer(t, s, "careful@example.test")
	product := createProduct(t, s, "Kettle", 1000, 10)
	saleID, _ := activeSale(t, s, "Toaster", 10, 10)

	const (
		registerQ = `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`
		loginQ    = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`
		createQ   = `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`
		updateQ   = `mutation($id: ID!, $in: UpdateProductInput!) { updateProduct(id: $id, input: $in) { id } }`
		orderQ    = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id } }`
	)
	inputs := []struct {
		name, field, token, query string
		vars                      func(bad string) map[string]any
	}{
		{"register email", "email", "", registerQ, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"email": "new" + bad + "@example.test", "password": "password-1", "name": "New"}}
		}},
		{"register name", "name", "", registerQ, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"email": testenv.Name() + "@example.test", "password": "password-1", "name": "Ne" + bad + "w"}}
		}},
		{"login email", "email", "", loginQ, func(bad string) map[string]any {
			return map[string]any{"e": "careful" + bad + "@example.test", "p": "customer-password"}
		}},
		{"product name", "name", admin, createQ, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"name": "Ket" + bad + "tle", "priceCents": 1, "stock": 1}}
		}},
		{"product description", "description", admin, createQ, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"name": "Kettle", "description": "Hot" + bad, "priceCents": 1, "stock": 1}}
		}},
		{"product name update", "name", admin, updateQ, func(bad string) map[string]any {
			return map[string]any{"id": product.ID, "in": map[string]any{"name": "Ket" + bad + "tle"}}
		}},
		{"order idempotency key", "idempotencyKey", buyer, orderQ, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"productId": product.ID, "quantity": 1, "idempotencyKey": "key" + bad}}
		}},
		{"flash-sale order idempotency key", "idempotencyKey", buyer, placeInSale, func(bad string) map[string]any {
			return map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": "key" + bad}}
		}},
	}
	t.Run("inputs", func(t *testing.T) { // returns once its parallel subtests are done
		for _, in := range inputs {
			for charName, bad := range controlCharacters {
				if charName == "line feed" && in.field == "description" {
					continue // descriptions keep their line breaks
				}
				t.Run(in.name+" with "+charName, func(t *testing.T) {
					t.Parallel()
					r := s.Do(t, in.token, in.query, in.vars(bad))
					wantRefused(t, r, flashsale.EINVALID)
					if len(r.Errors) > 0 && !strings.HasPrefix(r.Errors[0].Message, in.field+" ") {
						t.Errorf("message %q does not name the field %s", r.Errors[0].Message, in.field)
					}
				})
			}
		}
	})

	// Nothing was written: no order, no unit taken, the product unchanged.
	var data struct {
		Me struct {
			Orders struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		Product   Product
		FlashSale struct{ Remaining int }
	}
	s.Do(t, buyer, `query($p: ID!, $s: ID!) { me { orders { edges { node { id } } } } product(id: $p) { `+productAndStock+` } flashSale(id: $s) { remaining } }`,
		map[string]any{"p": product.ID, "s": saleID}).MustData(t, &data)
	if n := len(data.Me.Orders.Edges); n != 0 {
		t.Errorf("the buyer has %d orders; want none", n)
	}
	if data.Product.Name != "Kettle" || data.Product.Stock != 10 || data.FlashSale.Remaining != 10 {
		t.Errorf("after the refusals: product %+v, sale remaining %d; want Kettle with 10 in stock and 10 remaining",
			data.Product, data.FlashSale.Remaining)
	}
	// A description's line breaks and tabs are prose, not controls.
	s.Do(t, admin, createQ, map[string]any{"in": map[string]any{"name": "Kettle", "description": "Hot.\r\n\tQuick.", "priceCents": 1, "stock": 1}}).
		MustData(t, &struct{}{})
}

// One address typed two ways is one account: registered as a@example.com, "A@Example.com "
// signs in to it and cannot register it again; the same with an accent typed composed and
// decomposed (Unicode NFC).
func TestEmailsAreComparedInOneForm(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	tests := []struct{ registered, typed string }{
		{"a@example.com", "A@Example.com "},
		{"jos\u00e9@example.com", " JOSE\u0301@example.com"},
	}
	for _, tt := range tests {
		_, _, id := s.Register(t, tt.registered, "password-1", "Same")
		if got := s.Login(t, tt.typed, "password-1").User.ID; got != id {
			t.Errorf("login as %q signed in %s; want %s, registered as %q", tt.typed, got, id, tt.registered)
		}
		s.Do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			map[string]any{"in": map[string]any{"email": tt.typed, "password": "password-2", "name": "Twin"}}).
			WantCode(t, flashsale.ECONFLICT)
	}
}

// An order whose total would not fit GraphQL's 32-bit Int is refused with BAD_USER_INPUT
// before any unit is reserved, for a regular order and a flash-sale one.
func TestOrderTotalsMustFitAnInt(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	buyer := customer(t, s, "big-spender@example.test")
	product := createProduct(t, s, "Yacht", flashsale.MaxPriceCents, 10)
	now := time.Now()
	var sale struct{ CreateFlashSale struct{ ID string } }
	s.Do(t, admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
		"in": map[string]any{
			"productId": product.ID, "salePriceCents": flashsale.MaxPriceCents, "quantity": 10, "perUserLimit": 10,
			"startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
		},
	}).MustData(t, &sale)
	saleID := sale.CreateFlashSale.ID

	units := flashsale.MaxGraphQLInt/flashsale.MaxPriceCents + 1 // the fewest units past the limit
	for name, req := range map[string]struct{ query, idField, id string }{
		"regular":    {`mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id totalCents } }`, "productId", product.ID},
		"flash sale": {`mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id totalCents } }`, "flashSaleId", saleID},
	} {
		r := s.Do(t, buyer, req.query, map[string]any{"in": map[string]any{req.idField: req.id, "quantity": units, "idempotencyKey": testenv.Name()}})
		wantRefused(t, r, flashsale.EINVALID)
		// The largest order that fits is taken, with its total exact.
		var placed map[string]struct{ TotalCents int }
		s.Do(t, buyer, req.query, map[string]any{"in": map[string]any{req.idField: req.id, "quantity": units - 1, "idempotencyKey": testenv.Name()}}).
			MustData(t, &placed)
		for _, o := range placed {
			if want := (units - 1) * flashsale.MaxPriceCents; o.TotalCents != want {
				t.Errorf("%s: total %d; want %d", name, o.TotalCents, want)
			}
		}
	}
	var data struct {
		Product   Product
		FlashSale struct{ Remaining int }
	}
	s.Do(t, "", `query($p: ID!, $s: ID!) { product(id: $p) { `+productAndStock+` } flashSale(id: $s) { remaining } }`,
		map[string]any{"p": product.ID, "s": saleID}).MustData(t, &data)
	if want := 10 - (units - 1); data.Product.Stock != want || data.FlashSale.Remaining != want {
		t.Errorf("stock %d, sale remaining %d; want %d each (only the orders that fit took units)", data.Product.Stock, data.FlashSale.Remaining, want)
	}
}

package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// nodeQuery asks for a node with a field of each kind, so the answer shows which it is.
const nodeQuery = `query($id: ID!) { node(id: $id) { __typename id
	... on User { email }
	... on Product { name }
	... on FlashSale { quantity product { id } }
	... on Order { quantity product { id } flashSale { id } } } }`

// Node is node(id:)'s answer to nodeQuery.
type Node struct {
	Typename  string `json:"__typename"`
	ID        string
	Email     string
	Name      string
	Quantity  int
	Product   *struct{ ID string }
	FlashSale *struct{ ID string }
}

// node asks for the node as the token's viewer and returns it, nil for null.
func node(t *testing.T, s *apitest.Server, token, id string) *Node {
	t.Helper()
	var data struct{ Node *Node }
	s.Do(t, token, nodeQuery, map[string]any{"id": id}).MustData(t, &data)
	return data.Node
}

func TestNode(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	saleID, productID := activeSale(t, s, "Lamp", 10, 5)
	buyerEmail := testenv.Name() + "-buyer@example.test"
	buyer, _, buyerID := s.Register(t, buyerEmail, "customer-password", "Buyer")
	other, _, otherID := s.Register(t, testenv.Name()+"-other@example.test", "customer-password", "Other")
	orderID := placeOrders(t, s, buyer, saleID, 1)[0]

	t.Run("each kind", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, token, id string
			want            Node
		}{
			{"product, anonymous", "", productID, Node{Typename: "Product", ID: productID, Name: "Lamp"}},
			{"flash sale, anonymous", "", saleID, Node{Typename: "FlashSale", ID: saleID, Quantity: 10, Product: &struct{ ID string }{productID}}},
			{"user, themselves", buyer, buyerID, Node{Typename: "User", ID: buyerID, Email: buyerEmail}},
			{"user, admin", admin, buyerID, Node{Typename: "User", ID: buyerID, Email: buyerEmail}},
			{"order, its buyer", buyer, orderID, Node{Typename: "Order", ID: orderID, Quantity: 1,
				Product: &struct{ ID string }{productID}, FlashSale: &struct{ ID string }{saleID}}},
			{"order, admin", admin, orderID, Node{Typename: "Order", ID: orderID, Quantity: 1,
				Product: &struct{ ID string }{productID}, FlashSale: &struct{ ID string }{saleID}}},
		} {
			got := node(t, s, tc.token, tc.id)
			if got == nil {
				t.Errorf("%s: node(%s) = null; want %+v", tc.name, tc.id, tc.want)
				continue
			}
			if b1, b2 := mustJSON(t, *got), mustJSON(t, tc.want); b1 != b2 {
				t.Errorf("%s: node(%s)\n got %s\nwant %s", tc.name, tc.id, b1, b2)
			}
		}
	})

	t.Run("someone else's", func(t *testing.T) {
		t.Parallel()
		// As the type's own query answers: someone else's order or user is null, as if it did
		// not exist, and without a viewer it is UNAUTHENTICATED.
		for _, id := range []string{orderID, buyerID} {
			if got := node(t, s, other, id); got != nil {
				t.Errorf("node(%s) as another customer: got %+v, want null", id, got)
			}
			wantRefused(t, s.Do(t, "", nodeQuery, map[string]any{"id": id}), flashsale.EUNAUTHENTICATED)
		}
		var order struct{ Order *struct{ ID string } }
		s.Do(t, other, `query($id: ID!) { order(id: $id) { id } }`, map[string]any{"id": orderID}).MustData(t, &order)
		if order.Order != nil {
			t.Errorf("order(%s) as another customer: got %+v, want null, as node answers", orderID, order.Order)
		}
		if got := node(t, s, other, otherID); got == nil || got.ID != otherID {
			t.Errorf("node(%s) as that user: got %+v, want the user", otherID, got)
		}
	})

	t.Run("ids of nothing", func(t *testing.T) {
		t.Parallel()
		next := func(id string) string { // a well-formed id of the same kind that was never made
			kind, _, _ := strings.Cut(id, "_")
			return fmt.Sprintf("%s_%d", kind, idNumber(t, id)+1)
		}
		for _, id := range []string{next(productID), next(saleID), next(orderID), next(buyerID)} {
			if got := node(t, s, admin, id); got != nil {
				t.Errorf("node(%s), which does not exist: got %+v, want null", id, got)
			}
		}
		if got := node(t, s, buyer, next(orderID)); got != nil {
			t.Errorf("node(%s) as a customer, which does not exist: got %+v, want null", next(orderID), got)
		}
	})

	t.Run("malformed ids", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"", "garbage", "prd_", "prd_abc", "prd_-5", "sal_0", "ord_1x",
			"usr_99999999999999999999999", "ntf_123", "xyz_123", "PRD_1", "prd 1", strings.Repeat("é", 100)} {
			for _, token := range []string{"", buyer, admin} {
				r := s.Do(t, token, nodeQuery, map[string]any{"id": id})
				wantRefused(t, r, flashsale.EINVALID)
			}
		}
	})
}

// mustJSON writes v as JSON, to compare answers field by field.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Aliased node fields are read together: each kind one statement per shard, and what the
// nodes refer to as well, as for order(id:).
func TestNodesReadTogether(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter), apitest.WithConfig(func(c *app.Config) {
		c.ComplexityLimit = 100_000
	}))
	ids := orderFixture(t, s, 60)
	admin := s.AdminToken(t)
	var b strings.Builder
	b.WriteString("{")
	for i, id := range ids {
		fmt.Fprintf(&b, ` n%d: node(id: %q) { id ... on Order { user { id name } product { id name } flashSale { id } } }`, i, id)
	}
	b.WriteString(" }")

	flushCache(t, s)
	counter.Reset()
	var data map[string]*struct {
		ID   string
		User struct{ ID string }
	}
	s.Do(t, admin, b.String(), nil).MustData(t, &data)
	for i, id := range ids {
		if n := data[fmt.Sprint("n", i)]; n == nil || n.ID != id.String() || n.User.ID == "" {
			t.Fatalf("n%d: got %+v, want order %s with its user", i, n, id)
		}
	}
	const levels = 4 // orders, their users, products and sales
	if got := counter.Total(); got < levels {
		t.Errorf("%d statements in all, want at least %d (one per level): the reads did not reach PostgreSQL", got, levels)
	}
	for shard, c := range counter.Counts() {
		if c > levels {
			t.Errorf("shard %d got %d statements, want at most %d:\n%s", shard, c, levels, counter)
		}
	}
}

// Sale is a flash sale as the connection's tests read it.
type Sale struct {
	ID     string
	Status string
}

// salesPage is one page of flashSalesConnection.
type salesPage struct {
	Edges []struct {
		Cursor string
		Node   Sale
	}
	PageInfo struct {
		HasNextPage, HasPreviousPage bool
		StartCursor, EndCursor       *string
	}
}

func TestFlashSalesConnection(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	create := func(name string, startsIn, endsIn time.Duration, quantity int) string {
		t.Helper()
		p := createProduct(t, s, name, 1000, 10)
		now := time.Now()
		var data struct{ CreateFlashSale struct{ ID string } }
		s.Do(t, admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
			"in": map[string]any{
				"productId": p.ID, "salePriceCents": 500, "quantity": quantity, "perUserLimit": 1,
				"startsAt": now.Add(startsIn).Format(time.RFC3339Nano), "endsAt": now.Add(endsIn).Format(time.RFC3339Nano),
			},
		}).MustData(t, &data)
		return data.CreateFlashSale.ID
	}
	// Sales of every status, in creation order, the statuses interleaved so that a filtered
	// page has to skip others. The ending one is made first and ends while the rest are made.
	endsSoon := 3 * time.Second
	ending := create("Ending", -time.Minute, endsSoon, 5)
	made := time.Now()
	want := []Sale{{ending, "ENDED"}}
	for i := range 3 {
		active := create(fmt.Sprint("Active ", i), -time.Minute, time.Hour, 5)
		soldOut := create(fmt.Sprint("Sold out ", i), -time.Minute, time.Hour, 1)
		placeOrders(t, s, buyer, soldOut, 1)
		scheduled := create(fmt.Sprint("Scheduled ", i), time.Hour, 2*time.Hour, 5)
		want = append(want, Sale{active, "ACTIVE"}, Sale{soldOut, "SOLD_OUT"}, Sale{scheduled, "SCHEDULED"})
	}
	time.Sleep(time.Until(made.Add(endsSoon + 100*time.Millisecond)))

	query := `query($first: Int, $after: String, $status: FlashSaleStatus) {
		flashSalesConnection(first: $first, after: $after, status: $status) {
			edges { cursor node { id status } }
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`
	pageThrough := func(t *testing.T, first int, status *string) []Sale {
		t.Helper()
		var got []Sale
		vars := map[string]any{"first": first, "status": status}
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatalf("still paging after %d pages", page)
			}
			var data struct{ FlashSalesConnection salesPage }
			s.Do(t, "", query, vars).MustData(t, &data)
			conn := data.FlashSalesConnection
			if len(conn.Edges) > first {
				t.Fatalf("page %d: %d edges, more than first = %d", page, len(conn.Edges), first)
			}
			if conn.PageInfo.HasPreviousPage != (page > 0) {
				t.Errorf("page %d: hasPreviousPage %v; want %v", page, conn.PageInfo.HasPreviousPage, page > 0)
			}
			if len(conn.Edges) > 0 {
				if conn.PageInfo.StartCursor == nil || *conn.PageInfo.StartCursor != conn.Edges[0].Cursor ||
					conn.PageInfo.EndCursor == nil || *conn.PageInfo.EndCursor != conn.Edges[len(conn.Edges)-1].Cursor {
					t.Fatalf("page %d: startCursor %v, endCursor %v; want the first and last edges' cursors", page,
						conn.PageInfo.StartCursor, conn.PageInfo.EndCursor)
				}
			} else if conn.PageInfo.StartCursor != nil || conn.PageInfo.EndCursor != nil || conn.PageInfo.HasNextPage {
				t.Fatalf("page %d is empty: got pageInfo %+v; want null cursors and no next page", page, conn.PageInfo)
			}
			for _, e := range conn.Edges {
				got = append(got, e.Node)
			}
			if !conn.PageInfo.HasNextPage {
				return got
			}
			if len(conn.Edges) < first {
				t.Fatalf("page %d: %d edges of %d with hasNextPage", page, len(conn.Edges), first)
			}
			vars = map[string]any{"first": first, "after": *conn.PageInfo.EndCursor, "status": status}
		}
	}
	for _, status := range []string{"", "SCHEDULED", "ACTIVE", "SOLD_OUT", "ENDED"} {
		var filter *string
		wantHere := want
		if status != "" {
			filter = &status
			wantHere = slices.DeleteFunc(slices.Clone(want), func(s Sale) bool { return s.Status != status })
		}
		for _, first := range []int{1, 2, 3, 100} {
			t.Run(fmt.Sprintf("status=%s first=%d", status, first), func(t *testing.T) {
				if got := pageThrough(t, first, filter); !slices.Equal(got, wantHere) {
					t.Errorf("paged sales:\n got %+v\nwant %+v (each once, in creation order)", got, wantHere)
				}
			})
		}
	}

	t.Run("first=0", func(t *testing.T) {
		var data struct{ FlashSalesConnection salesPage }
		s.Do(t, "", `{ flashSalesConnection(first: 0) { edges { cursor } pageInfo { hasNextPage startCursor endCursor } } }`, nil).
			MustData(t, &data)
		if c := data.FlashSalesConnection; len(c.Edges) != 0 || !c.PageInfo.HasNextPage || c.PageInfo.EndCursor != nil {
			t.Errorf("first: 0: got %+v; want no edges, hasNextPage, null cursors", c)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, q := range []string{
			`{ flashSalesConnection(first: -1) { edges { cursor } } }`,
			`{ flashSalesConnection(first: 101) { edges { cursor } } }`,
			`{ flashSalesConnection(after: "not a cursor") { edges { cursor } } }`,
			`{ flashSalesConnection(after: ` + quote(encodeCursor("sal_x")) + `) { edges { cursor } } }`,
			`{ flashSalesConnection(after: ` + quote(encodeCursor("prd_1")) + `) { edges { cursor } } }`,
		} {
			wantRefused(t, s.Do(t, "", q, nil), flashsale.EINVALID)
		}
		wantRefused(t, s.Do(t, "", `{ flashSalesConnection(status: LIVE) { edges { cursor } } }`, nil), flashsale.EINVALID)
	})

	// The list the contract names is unchanged beside the connection: the same sales, with
	// the same filter.
	t.Run("flashSales unchanged", func(t *testing.T) {
		for _, status := range []string{"", "SCHEDULED", "ACTIVE", "SOLD_OUT", "ENDED"} {
			var filter *string
			wantHere := want
			if status != "" {
				filter = &status
				wantHere = slices.DeleteFunc(slices.Clone(want), func(s Sale) bool { return s.Status != status })
			}
			var data struct{ FlashSales []Sale }
			s.Do(t, "", `query($status: FlashSaleStatus) { flashSales(status: $status) { id status } }`,
				map[string]any{"status": filter}).MustData(t, &data)
			if !slices.Equal(data.FlashSales, wantHere) {
				t.Errorf("flashSales(status: %q):\n got %+v\nwant %+v", status, data.FlashSales, wantHere)
			}
		}
	})
}

// encodeCursor writes a cursor as the API does: base64 of the last node's id.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

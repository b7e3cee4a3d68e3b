package e2e_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// The operations of shop staff (schema.graphqls, "Shop staff"): who may call them, and what
// each does to users, sales, orders, stock and products.

const (
	saleFields         = `id salePriceCents quantity remaining perUserLimit startsAt endsAt status cancelledAt`
	updateSale         = `mutation($id: ID!, $in: UpdateFlashSaleInput!) { updateFlashSale(id: $id, input: $in) { ` + saleFields + ` } }`
	endSale            = `mutation($id: ID!) { endFlashSale(id: $id) { ` + saleFields + ` } }`
	cancelSale         = `mutation($id: ID!) { cancelFlashSale(id: $id) { ` + saleFields + ` } }`
	retireProduct      = `mutation($id: ID!) { retireProduct(id: $id) { id retiredAt } }`
	readSale           = `query($id: ID!) { flashSale(id: $id) { ` + saleFields + ` } }`
	listUsers          = `query($s: String, $first: Int, $after: String) { users(search: $s, first: $first, after: $after) { edges { cursor node { id email name } } pageInfo { hasNextPage endCursor } } }`
	listSaleOrders     = `query($id: ID!, $st: OrderStatus, $first: Int, $after: String) { flashSale(id: $id) { orders(status: $st, first: $first, after: $after) { edges { cursor node { id status quantity totalCents } } pageInfo { hasNextPage endCursor } } } }`
	placeRegular       = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id status } }`
	createSaleMutation = `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`
)

// staffSale is a flash sale as the staff's operations answer it.
type staffSale struct {
	ID             string
	SalePriceCents int
	Quantity       int
	Remaining      int
	PerUserLimit   int
	StartsAt       time.Time
	EndsAt         time.Time
	Status         string
	CancelledAt    *time.Time
}

type staffOrder struct {
	ID         string
	Status     string
	Quantity   int
	TotalCents int
}

// scheduledSale creates a sale of a new product that starts in an hour.
func scheduledSale(t *testing.T, s *apitest.Server, quantity, perUserLimit int) (saleID, productID string) {
	t.Helper()
	p := createProduct(t, s, "Scheduled "+testenv.Name(), 2000, 100)
	now := time.Now()
	var data struct{ CreateFlashSale struct{ ID string } }
	s.Do(t, s.AdminToken(t), createSaleMutation, map[string]any{"in": map[string]any{
		"productId": p.ID, "salePriceCents": 1500, "quantity": quantity, "perUserLimit": perUserLimit,
		"startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(2 * time.Hour).Format(time.RFC3339),
	}}).MustData(t, &data)
	return data.CreateFlashSale.ID, p.ID
}

func getSale(t *testing.T, s *apitest.Server, id string) staffSale {
	t.Helper()
	var data struct{ FlashSale staffSale }
	s.Do(t, "", readSale, map[string]any{"id": id}).MustData(t, &data)
	return data.FlashSale
}

// saleOrders reads every page of a sale's orders (in the status, if not ""), pageSize at a
// time, and fails on a page that repeats an order or breaks the newest-first order.
func saleOrders(t *testing.T, s *apitest.Server, saleID, status string, pageSize int) []staffOrder {
	t.Helper()
	vars := map[string]any{"id": saleID, "first": pageSize}
	if status != "" {
		vars["st"] = status
	}
	var all []staffOrder
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages: the cursor does not move")
		}
		var data struct {
			FlashSale struct {
				Orders struct {
					Edges []struct {
						Cursor string
						Node   staffOrder
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		s.Do(t, s.AdminToken(t), listSaleOrders, vars).MustData(t, &data)
		conn := data.FlashSale.Orders
		if len(conn.Edges) > pageSize {
			t.Fatalf("a page of %d has %d orders", pageSize, len(conn.Edges))
		}
		for _, e := range conn.Edges {
			all = append(all, e.Node)
		}
		if !conn.PageInfo.HasNextPage {
			break
		}
		if conn.PageInfo.EndCursor == nil || len(conn.Edges) == 0 {
			t.Fatalf("hasNextPage without an endCursor or edges: %+v", conn.PageInfo)
		}
		vars["after"] = *conn.PageInfo.EndCursor
	}
	for i := 1; i < len(all); i++ {
		if idNumber(t, all[i-1].ID) <= idNumber(t, all[i].ID) {
			t.Fatalf("orders %s then %s: want newest first, each once", all[i-1].ID, all[i].ID)
		}
	}
	return all
}

func orderIDs(orders []staffOrder) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	slices.Sort(ids)
	return ids
}

// wantConserved checks the sale's invariant as the API shows it: units in PENDING and PAID
// orders + remaining = quantity.
func wantConserved(t *testing.T, s *apitest.Server, saleID string) {
	t.Helper()
	sale := getSale(t, s, saleID)
	held := 0
	for _, o := range saleOrders(t, s, saleID, "", 100) {
		if o.Status == "PENDING" || o.Status == "PAID" {
			held += o.Quantity
		}
	}
	if held+sale.Remaining != sale.Quantity {
		t.Errorf("held %d + remaining %d != quantity %d", held, sale.Remaining, sale.Quantity)
	}
}

// Every staff operation, and createFlashSale, refuses a customer (FORBIDDEN) and an anonymous
// caller (UNAUTHENTICATED), and changes nothing for them.
func TestStaffOperationsAreForAdminsOnly(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, productID := activeSale(t, s, "Guarded "+testenv.Name(), 5, 1)
	scheduledID, _ := scheduledSale(t, s, 5, 1)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	ops := map[string]struct {
		query string
		vars  map[string]any
	}{
		"users":            {listUsers, map[string]any{"s": "a"}},
		"flashSale.orders": {listSaleOrders, map[string]any{"id": saleID}},
		"updateFlashSale":  {updateSale, map[string]any{"id": scheduledID, "in": map[string]any{"salePriceCents": 1}}},
		"endFlashSale":     {endSale, map[string]any{"id": saleID}},
		"cancelFlashSale":  {cancelSale, map[string]any{"id": saleID}},
		"retireProduct":    {retireProduct, map[string]any{"id": productID}},
		"createFlashSale": {createSaleMutation, map[string]any{"in": map[string]any{
			"productId": productID, "salePriceCents": 1, "quantity": 1, "perUserLimit": 1,
			"startsAt": time.Now().Add(time.Hour).Format(time.RFC3339), "endsAt": time.Now().Add(2 * time.Hour).Format(time.RFC3339),
		}}},
	}
	for name, op := range ops {
		for who, token := range map[string]string{"customer": buyer, "anonymous": ""} {
			want := flashsale.EFORBIDDEN
			if token == "" {
				want = flashsale.EUNAUTHENTICATED
			}
			r := s.Do(t, token, op.query, op.vars)
			if got := r.Codes(); !slices.Equal(got, []string{want}) {
				t.Errorf("%s as %s: got codes %q; want [%q]\nbody: %.500s", name, who, got, want, r.Body)
			}
			wantNoLeak(t, r)
		}
	}
	if got := getSale(t, s, saleID); got.Status != "ACTIVE" || got.CancelledAt != nil {
		t.Errorf("after the refusals the sale is %s (cancelledAt %v); want ACTIVE, never cancelled", got.Status, got.CancelledAt)
	}
	if got := getSale(t, s, scheduledID); got.SalePriceCents != 1500 {
		t.Errorf("after the refusals the scheduled sale costs %d; want 1500", got.SalePriceCents)
	}
	var p struct {
		Product struct{ RetiredAt *time.Time }
	}
	s.Do(t, "", `query($id: ID!) { product(id: $id) { retiredAt } }`, map[string]any{"id": productID}).MustData(t, &p)
	if p.Product.RetiredAt != nil {
		t.Errorf("after the refusals the product is retired at %v", p.Product.RetiredAt)
	}
}

// The admin pages through every user, across shards, and finds users by a prefix of their
// email or name, whatever its case; a LIKE wildcard in the search is taken literally.
func TestAdminListsAndSearchesUsers(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	tag := testenv.Name()
	var tagged []string
	for i := range 7 {
		_, _, id := s.Register(t, fmt.Sprintf("%s.%d@example.test", tag, i), "customer-password", fmt.Sprintf("Buyer %d", i))
		tagged = append(tagged, id)
	}
	_, _, named := s.Register(t, testenv.Name()+"@example.test", "customer-password", "Zoë "+tag)
	admin := s.AdminToken(t)

	type userRow struct{ ID, Email, Name string }
	list := func(search *string, pageSize int) []userRow {
		t.Helper()
		vars := map[string]any{"first": pageSize}
		if search != nil {
			vars["s"] = *search
		}
		var all []userRow
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("more than 100 pages: the cursor does not move")
			}
			var data struct {
				Users struct {
					Edges    []struct{ Node userRow }
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
			s.Do(t, admin, listUsers, vars).MustData(t, &data)
			for _, e := range data.Users.Edges {
				all = append(all, e.Node)
			}
			if !data.Users.PageInfo.HasNextPage {
				break
			}
			vars["after"] = *data.Users.PageInfo.EndCursor
		}
		for i := 1; i < len(all); i++ {
			if idNumber(t, all[i-1].ID) >= idNumber(t, all[i].ID) {
				t.Fatalf("users %s then %s: want registration order, each once", all[i-1].ID, all[i].ID)
			}
		}
		return all
	}
	ids := func(rows []userRow) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.ID
		}
		slices.Sort(out)
		return out
	}
	str := func(s string) *string { return &s }
	want := slices.Clone(tagged)
	slices.Sort(want)

	everyone := list(nil, 3)
	if len(everyone) != 9 { // the admin, 7 tagged, 1 named
		t.Errorf("listing everyone 3 at a time gave %d users; want 9", len(everyone))
	}
	if got := ids(list(str(tag), 2)); !slices.Equal(got, want) {
		t.Errorf("search %q, 2 a page: got %v; want the 7 tagged %v", tag, got, want)
	}
	if got := ids(list(str(" "+strings.ToUpper(tag)+".1"), 20)); !slices.Equal(got, []string{tagged[1]}) {
		t.Errorf("search by upper-case email prefix: got %v; want [%s]", got, tagged[1])
	}
	if got := ids(list(str("ZOË "+strings.ToUpper(tag[:4])), 20)); !slices.Equal(got, []string{named}) {
		t.Errorf("search by name prefix: got %v; want [%s]", got, named)
	}
	for _, literal := range []string{"%", "_", tag + "%"} {
		if got := list(str(literal), 20); len(got) != 0 {
			t.Errorf("search %q matched %d users; want none (wildcards are literal)", literal, len(got))
		}
	}
	if got := list(str(""), 50); len(got) != 9 {
		t.Errorf("an empty search gave %d users; want everyone (9)", len(got))
	}

	for name, vars := range map[string]map[string]any{
		"first over 100":  {"first": 101},
		"negative first":  {"first": -1},
		"control in text": {"s": "a\x00b"},
		"long search":     {"s": strings.Repeat("a", 300)},
		"bad cursor":      {"after": "!!"},
		"foreign cursor":  {"after": encodeCursorForTest("prd_1")},
	} {
		r := s.Do(t, admin, listUsers, vars)
		if got := r.Codes(); !slices.Equal(got, []string{flashsale.EINVALID}) {
			t.Errorf("%s: got codes %q; want [BAD_USER_INPUT]", name, got)
		}
		wantNoLeak(t, r)
	}
}

// The admin lists a sale's orders, gathered from the buyers' shards, newest first, by status,
// in pages whose cursors hold while the list is read; other sales' orders stay out.
func TestAdminListsSaleOrdersByStatus(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Listed "+testenv.Name(), 20, 2)
	otherID, _ := activeSale(t, s, "Other "+testenv.Name(), 20, 2)
	var placed, cancelled []string
	for i := range 6 {
		buyer := customer(t, s, testenv.Name()+"@example.test")
		ids := placeOrders(t, s, buyer, saleID, 1)
		placed = append(placed, ids...)
		if i%2 == 0 {
			s.Do(t, buyer, `mutation($id: ID!) { cancelOrder(id: $id) { id } }`, map[string]any{"id": ids[0]}).MustData(t, &struct{}{})
			cancelled = append(cancelled, ids[0])
		}
		if i == 0 {
			placeOrders(t, s, buyer, otherID, 1)
		}
	}
	slices.Sort(placed)
	slices.Sort(cancelled)
	pending := slices.DeleteFunc(slices.Clone(placed), func(id string) bool { return slices.Contains(cancelled, id) })

	all := saleOrders(t, s, saleID, "", 4)
	if got := orderIDs(all); !slices.Equal(got, placed) {
		t.Errorf("all orders, 4 a page: got %v; want %v", got, placed)
	}
	for _, o := range all {
		if o.TotalCents != 1500 || o.Quantity != 1 {
			t.Errorf("order %s: %d units for %d cents; want 1 for 1500", o.ID, o.Quantity, o.TotalCents)
		}
	}
	for status, want := range map[string][]string{"CANCELLED": cancelled, "PENDING": pending, "PAID": {}} {
		got := saleOrders(t, s, saleID, status, 2)
		if ids := orderIDs(got); !slices.Equal(ids, want) {
			t.Errorf("%s orders, 2 a page: got %v; want %v", status, ids, want)
		}
		for _, o := range got {
			if o.Status != status {
				t.Errorf("listed as %s: order %s is %s", status, o.ID, o.Status)
			}
		}
	}
	if got := saleOrders(t, s, otherID, "", 10); len(got) != 1 {
		t.Errorf("the other sale lists %d orders; want its 1", len(got))
	}
	for name, vars := range map[string]map[string]any{
		"first over 100": {"id": saleID, "first": 101},
		"bad cursor":     {"id": saleID, "after": "%%%"},
		"bad status":     {"id": saleID, "st": "SHIPPED"},
	} {
		r := s.Do(t, s.AdminToken(t), listSaleOrders, vars)
		if got := r.Codes(); !slices.Equal(got, []string{flashsale.EINVALID}) {
			t.Errorf("%s: got codes %q; want [BAD_USER_INPUT]\nbody: %.300s", name, got, r.Body)
		}
		wantNoLeak(t, r)
	}
	wantConserved(t, s, saleID)
}

// The admin changes a scheduled sale's price, quantity, limit and window; the terms are
// checked, the live count follows at once, and the sale then sells on the new terms.
func TestAdminChangesScheduledSale(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := scheduledSale(t, s, 10, 5)
	activeID, _ := activeSale(t, s, "Running "+testenv.Name(), 5, 1)
	admin := s.AdminToken(t)
	now := time.Now()

	for name, in := range map[string]map[string]any{
		"zero quantity":         {"quantity": 0},
		"limit over quantity":   {"perUserLimit": 11},
		"negative price":        {"salePriceCents": -1},
		"start too soon":        {"startsAt": now.Add(time.Second).Format(time.RFC3339Nano)},
		"end before start":      {"endsAt": now.Add(30 * time.Minute).Format(time.RFC3339)},
		"longer than 31 days":   {"endsAt": now.Add(40 * 24 * time.Hour).Format(time.RFC3339)},
		"quantity over the max": {"quantity": flashsale.MaxStock + 1},
	} {
		r := s.Do(t, admin, updateSale, map[string]any{"id": saleID, "in": in})
		if got := r.Codes(); !slices.Equal(got, []string{flashsale.EINVALID}) {
			t.Errorf("%s: got codes %q; want [BAD_USER_INPUT]\nbody: %.300s", name, got, r.Body)
		}
		wantNoLeak(t, r)
	}
	if got := getSale(t, s, saleID); got.SalePriceCents != 1500 || got.Quantity != 10 || got.PerUserLimit != 5 {
		t.Fatalf("refused changes changed the sale: %+v", got)
	}
	s.Do(t, admin, updateSale, map[string]any{"id": activeID, "in": map[string]any{"quantity": 9}}).WantCode(t, flashsale.ECONFLICT)
	s.Do(t, admin, updateSale, map[string]any{"id": "sal_1", "in": map[string]any{"quantity": 9}}).WantCode(t, flashsale.ENOTFOUND)
	s.Do(t, admin, updateSale, map[string]any{"id": "prd_1", "in": map[string]any{"quantity": 9}}).WantCode(t, flashsale.EINVALID)

	// Opens in a few seconds, with 3 units, one each, at 990.
	startsAt := time.Now().Add(flashsale.SaleChangeLead + 2*time.Second).Truncate(time.Second)
	var changed struct{ UpdateFlashSale staffSale }
	s.Do(t, admin, updateSale, map[string]any{"id": saleID, "in": map[string]any{
		"salePriceCents": 990, "quantity": 3, "perUserLimit": 1,
		"startsAt": startsAt.Format(time.RFC3339Nano), "endsAt": startsAt.Add(time.Hour).Format(time.RFC3339Nano),
	}}).MustData(t, &changed)
	got := changed.UpdateFlashSale
	if got.SalePriceCents != 990 || got.Quantity != 3 || got.PerUserLimit != 1 || !got.StartsAt.Equal(startsAt) ||
		got.Remaining != 3 || got.Status != "SCHEDULED" {
		t.Fatalf("updateFlashSale answered %+v; want 990 cents, 3 units, 1 each, starting %v, 3 remaining, SCHEDULED", got, startsAt)
	}
	if again := getSale(t, s, saleID); again.SalePriceCents != 990 || again.Remaining != 3 || !again.StartsAt.Equal(startsAt) {
		t.Fatalf("the sale reads %+v after the change", again)
	}

	buyers := make([]string, 4)
	for i := range buyers {
		buyers[i] = customer(t, s, testenv.Name()+"@example.test")
	}
	s.Do(t, buyers[0], placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESALENOTACTIVE)
	time.Sleep(time.Until(startsAt) + 200*time.Millisecond)
	for _, b := range buyers[:3] {
		var o struct{ PlaceFlashSaleOrder staffOrder }
		s.Do(t, b, `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id status quantity totalCents } }`,
			placeVars(saleID, 1, testenv.Name())).MustData(t, &o)
		if o.PlaceFlashSaleOrder.TotalCents != 990 {
			t.Errorf("an order of the changed sale costs %d; want 990", o.PlaceFlashSaleOrder.TotalCents)
		}
	}
	s.Do(t, buyers[3], placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESOLDOUT)
	s.Do(t, admin, updateSale, map[string]any{"id": saleID, "in": map[string]any{"quantity": 9}}).WantCode(t, flashsale.ECONFLICT)
	wantConserved(t, s, saleID)
}

// Ending a running sale early stops its orders at once and keeps those it took.
func TestAdminEndsSaleEarly(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Ended "+testenv.Name(), 10, 2)
	scheduledID, _ := scheduledSale(t, s, 10, 2)
	admin := s.AdminToken(t)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	orderID := placeOrders(t, s, buyer, saleID, 1)[0]

	var ended struct{ EndFlashSale staffSale }
	before := time.Now()
	s.Do(t, admin, endSale, map[string]any{"id": saleID}).MustData(t, &ended)
	got := ended.EndFlashSale
	if got.Status != "ENDED" || got.EndsAt.After(time.Now()) || got.EndsAt.Before(before.Add(-time.Second)) ||
		got.Remaining != 9 || got.CancelledAt != nil {
		t.Fatalf("endFlashSale answered %+v; want ENDED now, 9 remaining, not cancelled", got)
	}
	s.Do(t, buyer, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESALENOTACTIVE)
	if o := readOrder(t, s, buyer, orderID); o.Status != "PENDING" {
		t.Errorf("the order taken before the end is %s; want PENDING, untouched", o.Status)
	}
	s.Do(t, admin, endSale, map[string]any{"id": saleID}).WantCode(t, flashsale.ECONFLICT)
	s.Do(t, admin, endSale, map[string]any{"id": scheduledID}).WantCode(t, flashsale.ECONFLICT)
	s.Do(t, admin, endSale, map[string]any{"id": "sal_1"}).WantCode(t, flashsale.ENOTFOUND)
	if got := getSale(t, s, saleID); got.Status != "ENDED" || got.Remaining != 9 {
		t.Errorf("the sale reads %+v after the end; want ENDED with 9 remaining", got)
	}
	wantConserved(t, s, saleID)
}

// Cancelling a running sale closes it, cancels every order that holds units (the units go
// back, a paid order is refunded exactly once), and the live stock feed shows the units back.
func TestAdminCancelsRunningSale(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t)
	saleID, _ := activeSale(t, s, "Cancelled "+testenv.Name(), 10, 2)
	admin := s.AdminToken(t)
	paidBuyer := customer(t, s, testenv.Name()+"@example.test")
	paid := placeOrders(t, s, paidBuyer, saleID, 2)
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, id := range paid {
			if got := readOrder(t, s, paidBuyer, id); got.Status != "PAID" {
				return fmt.Errorf("order %s is %s, want PAID", id, got.Status)
			}
		}
		return nil
	})
	lateBuyer := customer(t, s, testenv.Name()+"@example.test")
	late := placeOrders(t, s, lateBuyer, saleID, 1)[0] // PENDING or PAID by the time of the cancel

	ws := s.DialWS(t, "")
	defer ws.Close()
	feed := ws.MustSubscribe(t, `subscription($id: ID!) { flashSaleStock(flashSaleId: $id) { remaining at } }`, map[string]any{"id": saleID})

	var cancelled struct{ CancelFlashSale staffSale }
	s.Do(t, admin, cancelSale, map[string]any{"id": saleID}).MustData(t, &cancelled)
	got := cancelled.CancelFlashSale
	if got.Status != "ENDED" || got.CancelledAt == nil || got.EndsAt.After(time.Now()) || got.Remaining != 10 {
		t.Fatalf("cancelFlashSale answered %+v; want ENDED, cancelledAt set, ended now, all 10 remaining", got)
	}
	s.Do(t, paidBuyer, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESALENOTACTIVE)
	s.Do(t, admin, cancelSale, map[string]any{"id": saleID}).WantCode(t, flashsale.ECONFLICT)
	s.Do(t, admin, endSale, map[string]any{"id": saleID}).WantCode(t, flashsale.ECONFLICT)

	testenv.Eventually(t, 30*time.Second, func() error {
		for _, id := range paid {
			if o := readOrder(t, s, paidBuyer, id); o.Status != "CANCELLED" || o.RefundedAt == nil {
				return fmt.Errorf("paid order %s is %s refunded %v; want CANCELLED and refunded", id, o.Status, o.RefundedAt)
			}
		}
		if o := readOrder(t, s, lateBuyer, late); o.Status != "CANCELLED" {
			return fmt.Errorf("order %s is %s; want CANCELLED", late, o.Status)
		}
		return nil
	})
	if got := saleOrders(t, s, saleID, "CANCELLED", 10); len(got) != 3 {
		t.Errorf("the sale lists %d CANCELLED orders; want all 3", len(got))
	}
	wantConserved(t, s, saleID)
	// Nobody charged twice, nobody charged for nothing: every approved charge of the sale's
	// orders is refunded once, and only those.
	testenv.Eventually(t, 30*time.Second, func() error {
		charges, err := postgres.NewChargeLedger(s.API.DB).CountCharges(t.Context())
		if err != nil {
			return fmt.Errorf("count charges: %w", err)
		}
		if charges < 2 || charges > 3 {
			return fmt.Errorf("the gateway holds %d charges; want the 2 paid orders' and at most the late one's", charges)
		}
		if n := refundsInLedger(t, s); n != charges {
			return fmt.Errorf("the gateway holds %d refunds of %d charges; want each charge refunded once", n, charges)
		}
		return nil
	})

	ctx := t.Context()
	for {
		m, err := feed.Next(ctx)
		if err != nil {
			t.Fatalf("the stock feed never showed the 10 units back: %v", err)
		}
		if n, err := remainingOf(m); err == nil && n == 10 {
			break
		}
	}
}

// Cancelling a scheduled sale keeps it from ever opening; pending orders of a cancelled
// running sale are cancelled with their units back, and nothing is charged.
func TestAdminCancelsScheduledAndPendingSales(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t) // no payment worker: orders stay PENDING
	admin := s.AdminToken(t)
	scheduledID, _ := scheduledSale(t, s, 10, 2)
	var c struct{ CancelFlashSale staffSale }
	s.Do(t, admin, cancelSale, map[string]any{"id": scheduledID}).MustData(t, &c)
	if got := c.CancelFlashSale; got.Status != "ENDED" || got.CancelledAt == nil || got.Remaining != 10 {
		t.Fatalf("cancelling a scheduled sale answered %+v; want ENDED, cancelledAt set, 10 remaining", got)
	}
	s.Do(t, admin, updateSale, map[string]any{"id": scheduledID, "in": map[string]any{"quantity": 3}}).WantCode(t, flashsale.ECONFLICT)

	saleID, _ := activeSale(t, s, "Pending "+testenv.Name(), 10, 3)
	var orders []string
	for range 3 {
		buyer := customer(t, s, testenv.Name()+"@example.test")
		orders = append(orders, placeOrders(t, s, buyer, saleID, 2)...)
	}
	if got := getSale(t, s, saleID); got.Remaining != 4 {
		t.Fatalf("6 units bought of 10: remaining %d; want 4", got.Remaining)
	}
	s.Do(t, admin, cancelSale, map[string]any{"id": saleID}).MustData(t, &c)
	if c.CancelFlashSale.Remaining != 10 {
		t.Errorf("after the cancel %d remain; want all 10 back", c.CancelFlashSale.Remaining)
	}
	listed := saleOrders(t, s, saleID, "", 100)
	if len(listed) != len(orders) {
		t.Fatalf("the sale lists %d orders; want %d", len(listed), len(orders))
	}
	for _, o := range listed {
		if o.Status != "CANCELLED" {
			t.Errorf("order %s is %s after the sale's cancel; want CANCELLED", o.ID, o.Status)
		}
	}
	if n := refundsInLedger(t, s); n != 0 {
		t.Errorf("the gateway holds %d refunds; want none (nothing was charged)", n)
	}
	wantConserved(t, s, saleID)
}

// A retired product is no longer sold nor listed by default, gets no new sale, keeps its
// orders, and cannot be retired while a sale of it runs.
func TestAdminRetiresProduct(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	saleID, productID := activeSale(t, s, "Retired "+testenv.Name(), 5, 1)
	kept := createProduct(t, s, "Kept "+testenv.Name(), 100, 10)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	var placed struct{ PlaceOrder struct{ ID string } }
	s.Do(t, buyer, placeRegular, map[string]any{"in": map[string]any{"productId": productID, "quantity": 1, "idempotencyKey": testenv.Name()}}).
		MustData(t, &placed)

	s.Do(t, admin, retireProduct, map[string]any{"id": productID}).WantCode(t, flashsale.ECONFLICT)
	s.Do(t, admin, endSale, map[string]any{"id": saleID}).MustData(t, &struct{}{})

	var retired struct {
		RetireProduct struct {
			ID        string
			RetiredAt *time.Time
		}
	}
	s.Do(t, admin, retireProduct, map[string]any{"id": productID}).MustData(t, &retired)
	at := retired.RetireProduct.RetiredAt
	if at == nil || time.Since(*at) > time.Minute {
		t.Fatalf("retireProduct answered retiredAt %v; want now", at)
	}
	var again struct {
		RetireProduct struct{ RetiredAt *time.Time }
	}
	s.Do(t, admin, retireProduct, map[string]any{"id": productID}).MustData(t, &again)
	if again.RetireProduct.RetiredAt == nil || !again.RetireProduct.RetiredAt.Equal(*at) {
		t.Errorf("retiring again moved retiredAt from %v to %v", at, again.RetireProduct.RetiredAt)
	}
	s.Do(t, admin, retireProduct, map[string]any{"id": "prd_1"}).WantCode(t, flashsale.ENOTFOUND)

	s.Do(t, buyer, placeRegular, map[string]any{"in": map[string]any{"productId": productID, "quantity": 1, "idempotencyKey": testenv.Name()}}).
		WantCode(t, flashsale.ESALENOTACTIVE)
	s.Do(t, admin, createSaleMutation, map[string]any{"in": map[string]any{
		"productId": productID, "salePriceCents": 1, "quantity": 1, "perUserLimit": 1,
		"startsAt": time.Now().Add(time.Hour).Format(time.RFC3339), "endsAt": time.Now().Add(2 * time.Hour).Format(time.RFC3339),
	}}).WantCode(t, flashsale.ECONFLICT)
	if o := readOrder(t, s, buyer, placed.PlaceOrder.ID); o.Status != "PENDING" {
		t.Errorf("the order placed before the retirement is %s; want PENDING, untouched", o.Status)
	}

	catalog := func(includeRetired bool) []string {
		var data struct {
			Products struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		s.Do(t, "", `query($all: Boolean) { products(first: 100, includeRetired: $all) { edges { node { id } } } }`,
			map[string]any{"all": includeRetired}).MustData(t, &data)
		var ids []string
		for _, e := range data.Products.Edges {
			ids = append(ids, e.Node.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := catalog(false); !slices.Equal(got, []string{kept.ID}) {
		t.Errorf("the catalog lists %v; want only the product on sale %s", got, kept.ID)
	}
	if got, want := catalog(true), []string{productID, kept.ID}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("the catalog with retired products lists %v; want %v", got, want)
	}
	var p struct {
		Product struct{ RetiredAt *time.Time }
	}
	s.Do(t, "", `query($id: ID!) { product(id: $id) { retiredAt } }`, map[string]any{"id": productID}).MustData(t, &p)
	if p.Product.RetiredAt == nil {
		t.Error("product(id:) of a retired product shows no retiredAt")
	}
	var k struct{ PlaceOrder struct{ ID string } }
	s.Do(t, buyer, placeRegular, map[string]any{"in": map[string]any{"productId": kept.ID, "quantity": 1, "idempotencyKey": testenv.Name()}}).
		MustData(t, &k)
}

// encodeCursorForTest writes a cursor as the API does (base64 of a public id), for ids of
// the wrong kind.
func encodeCursorForTest(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// The fields a shop's pages need beside the contract's: a product's picture, currency and
// open sale, a PENDING order's expiry, the server's clock, and a stock feed that names its
// sale, follows its status and completes.

// TestProductImageAndCurrency: a product keeps the picture and currency it was given, says
// USD and no picture when given none, and refuses a picture that is not an http(s) URL and
// a currency that is not an ISO 4217 code.
func TestProductImageAndCurrency(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	const (
		create = `mutation($in: CreateProductInput!) { createProduct(input: $in) { id imageUrl currency } }`
		update = `mutation($id: ID!, $in: UpdateProductInput!) { updateProduct(id: $id, input: $in) { imageUrl currency } }`
		read   = `query($id: ID!) { product(id: $id) { imageUrl currency } }`
	)
	type product struct {
		ID       string
		ImageURL *string
		Currency string
	}
	var plain struct{ CreateProduct product }
	s.Do(t, admin, create, map[string]any{"in": map[string]any{"name": "Plain", "priceCents": 100, "stock": 1}}).MustData(t, &plain)
	if got := plain.CreateProduct; got.ImageURL != nil || got.Currency != "USD" {
		t.Errorf("a product given neither: got imageUrl %v, currency %q; want null and USD", got.ImageURL, got.Currency)
	}

	const picture = "https://images.example.test/kettle.png"
	var made struct{ CreateProduct product }
	s.Do(t, admin, create, map[string]any{"in": map[string]any{
		"name": "Kettle", "priceCents": 4900, "stock": 5, "imageUrl": picture, "currency": " eur ",
	}}).MustData(t, &made)
	var got struct{ Product product }
	s.Do(t, "", read, map[string]any{"id": made.CreateProduct.ID}).MustData(t, &got)
	if got.Product.ImageURL == nil || *got.Product.ImageURL != picture || got.Product.Currency != "EUR" {
		t.Errorf("read back: got imageUrl %v, currency %q; want %q, EUR", got.Product.ImageURL, got.Product.Currency, picture)
	}

	var changed struct{ UpdateProduct product }
	s.Do(t, admin, update, map[string]any{"id": made.CreateProduct.ID, "in": map[string]any{"imageUrl": "", "currency": "GBP"}}).
		MustData(t, &changed)
	if changed.UpdateProduct.ImageURL != nil || changed.UpdateProduct.Currency != "GBP" {
		t.Errorf("after the update: got imageUrl %v, currency %q; want null and GBP", changed.UpdateProduct.ImageURL, changed.UpdateProduct.Currency)
	}

	for _, tc := range []struct{ name, field, value string }{
		{"script URL", "imageUrl", "javascript:alert(1)"},
		{"relative URL", "imageUrl", "/kettle.png"},
		{"data URL", "imageUrl", "data:image/png;base64,AAAA"},
		{"credentials in the URL", "imageUrl", "https://user:pass@images.example.test/a.png"},
		{"currency of two letters", "currency", "EU"},
		{"currency with a digit", "currency", "US1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := map[string]any{"name": "Bad " + tc.name, "priceCents": 1, "stock": 1, tc.field: tc.value}
			s.Do(t, admin, create, map[string]any{"in": in}).WantCode(t, "BAD_USER_INPUT")
			s.Do(t, admin, update, map[string]any{"id": made.CreateProduct.ID, "in": map[string]any{tc.field: tc.value}}).
				WantCode(t, "BAD_USER_INPUT")
		})
	}
}

// createSale creates a sale of productID as the admin, open from startsAt to endsAt, at $15.
func createSale(t testing.TB, s *apitest.Server, productID string, quantity, perUserLimit int, startsAt, endsAt time.Time) string {
	t.Helper()
	var data struct{ CreateFlashSale struct{ ID string } }
	s.Do(t, s.AdminToken(t), `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
		"in": map[string]any{
			"productId": productID, "salePriceCents": 1500, "quantity": quantity, "perUserLimit": perUserLimit,
			"startsAt": startsAt.Format(time.RFC3339Nano), "endsAt": endsAt.Format(time.RFC3339Nano),
		},
	}).MustData(t, &data)
	return data.CreateFlashSale.ID
}

// TestProductActiveSale: a product names its sale while the sale's window is open, sold out
// or not, and no sale before or after; a page of products asks about their sales with one
// statement per shard.
func TestProductActiveSale(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	now := time.Now()
	running := createProduct(t, s, "Running", 2000, 10)
	runningSale := createSale(t, s, running.ID, 1, 1, now.Add(-time.Minute), now.Add(time.Hour))
	scheduled := createProduct(t, s, "Scheduled", 2000, 10)
	createSale(t, s, scheduled.ID, 5, 1, now.Add(time.Hour), now.Add(2*time.Hour))
	bare := createProduct(t, s, "Bare", 2000, 10)
	// Many products with running sales, so that the page spreads over every shard.
	want := map[string]string{running.ID: runningSale, scheduled.ID: "", bare.ID: ""}
	for i := range 9 {
		p := createProduct(t, s, fmt.Sprint("Busy ", i), 1000, 10)
		want[p.ID] = createSale(t, s, p.ID, 5, 1, now.Add(-time.Minute), now.Add(time.Hour))
	}

	const one = `query($id: ID!) { product(id: $id) { activeSale { id status product { id } } } }`
	type saleRef struct {
		ID      string
		Status  string
		Product struct{ ID string }
	}
	check := func(t *testing.T, productID, wantSale, wantStatus string) {
		t.Helper()
		var data struct{ Product struct{ ActiveSale *saleRef } }
		s.Do(t, "", one, map[string]any{"id": productID}).MustData(t, &data)
		got := data.Product.ActiveSale
		switch {
		case wantSale == "" && got != nil:
			t.Errorf("product %s: got activeSale %s, want null", productID, got.ID)
		case wantSale != "" && (got == nil || got.ID != wantSale || got.Status != wantStatus || got.Product.ID != productID):
			t.Errorf("product %s: got activeSale %+v, want %s %s of the product", productID, got, wantSale, wantStatus)
		}
	}
	check(t, running.ID, runningSale, "ACTIVE")
	check(t, scheduled.ID, "", "")
	check(t, bare.ID, "", "")
	placeOrders(t, s, customer(t, s, "only@example.test"), runningSale, 1)
	check(t, running.ID, runningSale, "SOLD_OUT")

	flushCache(t, s)
	counter.Reset()
	var page struct {
		Products struct {
			Edges []struct {
				Node struct {
					ID         string
					ActiveSale *struct {
						ID      string
						Product struct{ ID string }
					}
				}
			}
		}
	}
	s.Do(t, "", `{ products(first: 20) { edges { node { id activeSale { id product { id } } } } } }`, nil).MustData(t, &page)
	if got := len(page.Products.Edges); got != len(want) {
		t.Fatalf("got %d products, want %d", got, len(want))
	}
	for _, e := range page.Products.Edges {
		got := ""
		if e.Node.ActiveSale != nil {
			got = e.Node.ActiveSale.ID
			if e.Node.ActiveSale.Product.ID != e.Node.ID {
				t.Errorf("product %s: its activeSale's product is %s", e.Node.ID, e.Node.ActiveSale.Product.ID)
			}
		}
		if got != want[e.Node.ID] {
			t.Errorf("product %s: got activeSale %q, want %q", e.Node.ID, got, want[e.Node.ID])
		}
	}
	// The page, then its products' sales; the sales' products are the page's, read already.
	if got := counter.Total(); got < 2 {
		t.Errorf("%d statements in all, want at least 2: the reads did not reach PostgreSQL", got)
	}
	for shard, c := range counter.Counts() {
		if c > 2 {
			t.Errorf("shard %d got %d statements, want at most 2 (the page, the sales):\n%s", shard, c, counter)
		}
	}
}

// TestPendingOrderExpiresAt: a PENDING order says when it expires, RESERVATION_TTL after it
// was placed; once it is no longer PENDING it says nothing.
func TestPendingOrderExpiresAt(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	buyer := customer(t, s, "expiry@example.test")
	saleID, _ := activeSale(t, s, "Clock", 5, 5)
	type order struct {
		ID        string
		Status    string
		CreatedAt time.Time
		ExpiresAt *time.Time
	}
	var placed struct{ PlaceFlashSaleOrder order }
	s.Do(t, buyer, `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id status createdAt expiresAt } }`,
		map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": testenv.Name()}}).
		MustData(t, &placed)
	o := placed.PlaceFlashSaleOrder
	if o.Status != "PENDING" || o.ExpiresAt == nil {
		t.Fatalf("a new order: got status %s, expiresAt %v; want PENDING with an expiry", o.Status, o.ExpiresAt)
	}
	if got, want := o.ExpiresAt.Sub(o.CreatedAt), s.Config.ReservationTTL; got != want {
		t.Errorf("expiresAt - createdAt: got %v, want RESERVATION_TTL %v", got, want)
	}

	var cancelled struct{ CancelOrder order }
	s.Do(t, buyer, `mutation($id: ID!) { cancelOrder(id: $id) { id status expiresAt } }`, map[string]any{"id": o.ID}).
		MustData(t, &cancelled)
	if c := cancelled.CancelOrder; c.Status != "CANCELLED" || c.ExpiresAt != nil {
		t.Errorf("a cancelled order: got status %s, expiresAt %v; want CANCELLED and null", c.Status, c.ExpiresAt)
	}
}

// TestServerTime: serverTime is the server's clock, to within the request.
func TestServerTime(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	before := time.Now()
	var data struct{ ServerTime time.Time }
	s.Do(t, "", `{ serverTime }`, nil).MustData(t, &data)
	after := time.Now()
	// The test shares the server's clock; RFC 3339 with fractions keeps sub-second precision.
	if data.ServerTime.Before(before.Add(-time.Second)) || data.ServerTime.After(after.Add(time.Second)) {
		t.Errorf("serverTime %v is not between %v and %v", data.ServerTime, before, after)
	}
}

// stockMessage is a message of the full flashSaleStock selection.
type stockMessage struct {
	FlashSaleStock struct {
		ID          string
		FlashSaleID *string
		Status      *string
		Remaining   int
		FlashSale   *struct {
			ID        string
			Remaining int
			Status    string
		}
	}
}

const fullSaleStock = `subscription($id: ID!) { flashSaleStock(flashSaleId: $id) {
	id flashSaleId status remaining at flashSale { id remaining status } } }`

func nextStock(t *testing.T, sub *apitest.Subscription) stockMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msg stockMessage
	if err := m.Decode(&msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// wantStock checks that a message names the sale, with its count and status, the same on
// the update and on its FlashSale.
func wantStock(t *testing.T, msg stockMessage, saleID string, remaining int, status string) {
	t.Helper()
	u := msg.FlashSaleStock
	if u.ID != saleID || u.FlashSaleID == nil || *u.FlashSaleID != saleID || u.Status == nil || *u.Status != status ||
		u.Remaining != remaining || u.FlashSale == nil || u.FlashSale.ID != saleID ||
		u.FlashSale.Remaining != remaining || u.FlashSale.Status != status {
		t.Fatalf("got %+v (flashSale %+v), want sale %s with remaining %d, %s on the update and its flashSale",
			u, u.FlashSale, saleID, remaining, status)
	}
}

func wantCompleted(t *testing.T, sub *apitest.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		m, err := sub.Next(ctx)
		if errors.Is(err, apitest.ErrCompleted) {
			return
		}
		if err != nil {
			t.Fatalf("want the subscription completed: %v", err)
		}
		var msg stockMessage
		if m.Decode(&msg) == nil && msg.FlashSaleStock.Remaining == 0 {
			continue // a repeat of the final value is harmless
		}
		t.Fatalf("want the subscription completed, got another message: %s", m.Data)
	}
}

// TestStockFeedCompletesOnSellOut: each message names the sale and its status, with the
// same figures on its flashSale (what a normalized cache keys on), and the subscription
// completes after the message that finds the sale sold out.
func TestStockFeedCompletesOnSellOut(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Feed", 3, 3)
	sub := s.DialWS(t, "").MustSubscribe(t, fullSaleStock, map[string]any{"id": saleID})
	wantStock(t, nextStock(t, sub), saleID, 3, "ACTIVE")

	placeOrders(t, s, customer(t, s, "feed@example.test"), saleID, 3)
	for {
		msg := nextStock(t, sub)
		if msg.FlashSaleStock.Remaining > 0 {
			wantStock(t, msg, saleID, msg.FlashSaleStock.Remaining, "ACTIVE")
			continue
		}
		wantStock(t, msg, saleID, 0, "SOLD_OUT")
		break
	}
	wantCompleted(t, sub)
}

// TestStockFeedFollowsTheClock: a scheduled sale's feed says SCHEDULED, then ACTIVE when
// the sale starts and ENDED when it ends, though no unit was sold, and then completes.
func TestStockFeedFollowsTheClock(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Timed", 2000, 10)
	start := time.Now().Add(1500 * time.Millisecond)
	saleID := createSale(t, s, p.ID, 4, 2, start, start.Add(1500*time.Millisecond))
	sub := s.DialWS(t, "").MustSubscribe(t, fullSaleStock, map[string]any{"id": saleID})
	wantStock(t, nextStock(t, sub), saleID, 4, "SCHEDULED")
	wantStock(t, nextStock(t, sub), saleID, 4, "ACTIVE")
	wantStock(t, nextStock(t, sub), saleID, 4, "ENDED")
	if _, err := sub.Next(t.Context()); !errors.Is(err, apitest.ErrCompleted) {
		t.Fatalf("after ENDED: got %v, want the subscription completed", err)
	}
}

// TestProductStockFeedNamesTheProduct: a product's feed is keyed by the product's id and
// names no sale.
func TestProductStockFeedNamesTheProduct(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Shelf", 2000, 10)
	sub := s.DialWS(t, "").MustSubscribe(t, `subscription($id: ID!) { productStock(productId: $id) {
		id flashSaleId status flashSale { id } remaining } }`, map[string]any{"id": p.ID})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		ProductStock struct {
			ID          string
			FlashSaleID *string
			Status      *string
			FlashSale   *struct{ ID string }
			Remaining   int
		}
	}
	if err := m.Decode(&msg); err != nil {
		t.Fatal(err)
	}
	if u := msg.ProductStock; u.ID != p.ID || u.FlashSaleID != nil || u.Status != nil || u.FlashSale != nil || u.Remaining != 10 {
		t.Errorf("got %+v, want id %s, no sale, remaining 10", u, p.ID)
	}
}

// TestStockFeedEndsWhenStaffEndTheSale: a sale ended early by staff shows ENDED on its feed
// within seconds, though no unit was sold, and the subscription completes.
func TestStockFeedEndsWhenStaffEndTheSale(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Ended early", 5, 5)
	sub := s.DialWS(t, "").MustSubscribe(t, fullSaleStock, map[string]any{"id": saleID})
	wantStock(t, nextStock(t, sub), saleID, 5, "ACTIVE")
	s.Do(t, s.AdminToken(t), `mutation($id: ID!) { endFlashSale(id: $id) { id } }`, map[string]any{"id": saleID}).
		MustData(t, &struct{}{})
	for { // the pool rebuilt for the new terms may send its count first
		msg := nextStock(t, sub)
		if u := msg.FlashSaleStock; u.Status != nil && *u.Status == "ACTIVE" && u.Remaining == 5 {
			continue
		}
		wantStock(t, msg, saleID, 5, "ENDED")
		break
	}
	if _, err := sub.Next(t.Context()); !errors.Is(err, apitest.ErrCompleted) {
		t.Fatalf("after ENDED: got %v, want the subscription completed", err)
	}
}

package e2e_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

const refundsMade = `flashsale_refunds_total{outcome="refunded"}`

// orderState is what a buyer sees of an order.
type orderState struct {
	Status     string
	RefundedAt *time.Time
}

func readOrder(t *testing.T, s *apitest.Server, token, id string) orderState {
	t.Helper()
	var got struct{ Order orderState }
	s.Do(t, token, `query($id: ID!) { order(id: $id) { status refundedAt } }`, map[string]any{"id": id}).MustData(t, &got)
	return got.Order
}

type notice struct{ Kind, Subject, Body string }

func notices(t *testing.T, s *apitest.Server, token string) []notice {
	t.Helper()
	var got struct {
		Me struct {
			Notifications struct{ Edges []struct{ Node notice } }
		}
	}
	s.Do(t, token, `{ me { notifications(first: 20) { edges { node { kind subject body } } } } }`, nil).MustData(t, &got)
	var list []notice
	for _, e := range got.Me.Notifications.Edges {
		list = append(list, e.Node)
	}
	return list
}

type saleFigures struct{ Orders, PaidOrders, Cancelled, RefundedOrders, Attempts int }

func saleStats(t *testing.T, s *apitest.Server, saleID string) saleFigures {
	t.Helper()
	var got struct{ FlashSale struct{ Stats saleFigures } }
	s.Do(t, s.AdminToken(t), `query($id: ID!) { flashSale(id: $id) { stats { orders paidOrders cancelled refundedOrders attempts } } }`,
		map[string]any{"id": saleID}).MustData(t, &got)
	return got.FlashSale.Stats
}

func placeOne(t *testing.T, s *apitest.Server, token, saleID string) string {
	t.Helper()
	var placed struct{ PlaceFlashSaleOrder struct{ ID string } }
	s.Do(t, token, placeInSale, placeVars(saleID, 1, testenv.Name())).MustData(t, &placed)
	return placed.PlaceFlashSaleOrder.ID
}

// refundsInLedger counts the refunds the mock gateway holds.
func refundsInLedger(t *testing.T, s *apitest.Server) int {
	t.Helper()
	n, err := postgres.NewChargeLedger(s.API.DB).CountRefunds(context.Background())
	if err != nil {
		t.Fatalf("count refunds: %v", err)
	}
	return n
}

// Cancelling a paid order refunds it exactly once; the order, the buyer's notification, the
// sale's stats and the metrics all say so.
func TestCancelledPaidOrderIsRefundedNotifiedAndCounted(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t)
	saleID, _ := activeSale(t, s, "Toaster", 5, 1)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	orderID := placeOne(t, s, buyer, saleID)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := readOrder(t, s, buyer, orderID); got.Status != "PAID" {
			return fmt.Errorf("order is %s, want PAID", got.Status)
		}
		return nil
	})

	var cancelled struct{ CancelOrder orderState }
	s.Do(t, buyer, `mutation($id: ID!) { cancelOrder(id: $id) { status refundedAt } }`, map[string]any{"id": orderID}).MustData(t, &cancelled)
	if cancelled.CancelOrder.Status != "CANCELLED" {
		t.Fatalf("cancel answered %+v, want CANCELLED", cancelled.CancelOrder)
	}
	s.Do(t, buyer, `mutation($id: ID!) { cancelOrder(id: $id) { status } }`, map[string]any{"id": orderID}).WantCode(t, flashsale.ECONFLICT)

	testenv.Eventually(t, 30*time.Second, func() error {
		if got := readOrder(t, s, buyer, orderID); got.Status != "CANCELLED" || got.RefundedAt == nil {
			return fmt.Errorf("order = %s refundedAt %v, want CANCELLED and refunded", got.Status, got.RefundedAt)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		kinds := map[string]int{}
		var settled notice
		for _, n := range notices(t, s, buyer) {
			kinds[n.Kind]++
			if n.Kind == flashsale.EventOrderSettled {
				settled = n
			}
		}
		if len(kinds) != 3 || kinds["order.placed"] != 1 || kinds["order.paid"] != 1 || kinds[flashsale.EventOrderSettled] != 1 {
			return fmt.Errorf("notifications = %v, want one each of order.placed, order.paid, order.settled", kinds)
		}
		if settled.Subject != "Order cancelled and refunded" {
			return fmt.Errorf("the ending's notification = %+v, want \"Order cancelled and refunded\"", settled)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		want := saleFigures{Orders: 1, PaidOrders: 0, Cancelled: 1, RefundedOrders: 1, Attempts: 1}
		if got := saleStats(t, s, saleID); got != want {
			return fmt.Errorf("stats = %+v, want %+v", got, want)
		}
		return nil
	})
	if n := refundsInLedger(t, s); n != 1 {
		t.Errorf("refunds at the gateway = %d, want 1", n)
	}
	if n := metric(t, s, refundsMade); n != 1 {
		t.Errorf("%s = %d, want 1", refundsMade, n)
	}
}

// A charge that lands after its order expired is refunded once: the gateway is slow, and the
// reservation expires while the charge is on its way.
func TestChargeLandingAfterExpiryIsRefunded(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t, apitest.WithConfig(func(c *app.Config) {
		c.PaymentLatency = 4 * time.Second
		c.ReservationTTL = time.Second
	}))
	saleID, _ := activeSale(t, s, "Kettle", 5, 1)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	orderID := placeOne(t, s, buyer, saleID)
	// The payment worker read the order PENDING long before this, and its charge lands some
	// three seconds after the expiry; the expiry's own settlement, as slow, lands later still.
	time.Sleep(1500 * time.Millisecond)
	if _, err := s.API.Checkout.ExpireStale(context.Background(), 100); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 30*time.Second, func() error {
		if got := readOrder(t, s, buyer, orderID); got.Status != "EXPIRED" || got.RefundedAt == nil {
			return fmt.Errorf("order = %s refundedAt %v, want EXPIRED and refunded", got.Status, got.RefundedAt)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, n := range notices(t, s, buyer) {
			if n.Kind == flashsale.EventOrderSettled {
				if n.Subject != "Reservation expired and refunded" {
					return fmt.Errorf("the ending's notification = %+v, want \"Reservation expired and refunded\"", n)
				}
				return nil
			}
		}
		return fmt.Errorf("no order.settled notification yet")
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		want := saleFigures{Orders: 1, PaidOrders: 0, Cancelled: 1, RefundedOrders: 1, Attempts: 1}
		if got := saleStats(t, s, saleID); got != want {
			return fmt.Errorf("stats = %+v, want %+v", got, want)
		}
		return nil
	})
	if n := refundsInLedger(t, s); n != 1 {
		t.Errorf("refunds at the gateway = %d, want 1", n)
	}
}

// attempts counts every attempt of a burst at a sale that sells out, those answered from
// memory (by the checkout, and by the fast path before GraphQL) included.
func TestAttemptsCountEveryAttemptOfABurst(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Lamp", 3, 1)
	buyers := make([]string, 8)
	for i := range buyers {
		buyers[i] = customer(t, s, fmt.Sprintf("%s-%d@example.test", testenv.Name(), i))
	}
	fastBefore := metric(t, s, byFastPath)
	const perBuyer = 25
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for _, b := range buyers {
		wg.Go(func() {
			for range perBuyer {
				r := s.Do(t, b, placeInSale, placeVars(saleID, 1, testenv.Name()))
				code := "ok"
				if c := r.Codes(); len(c) > 0 {
					code = c[0]
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes["ok"] != 3 || codes[flashsale.ESOLDOUT] == 0 {
		t.Fatalf("answers = %v, want 3 orders and SOLD_OUT refusals", codes)
	}
	if metric(t, s, byFastPath) == fastBefore {
		t.Fatalf("no refusal was answered by the fast path; the test needs some (answers %v)", codes)
	}
	// A request refused whole by a rate limit never reached the sale.
	want := len(buyers)*perBuyer - codes[flashsale.ERATELIMITED]
	if got := saleStats(t, s, saleID).Attempts; got != want {
		t.Errorf("attempts = %d, want %d (answers %v)", got, want, codes)
	}
}

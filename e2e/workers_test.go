package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// An order placed through GraphQL becomes PAID, its buyer is notified once per event, and the
// sale's stats count it: the whole path through the outbox, RabbitMQ, Kafka and the workers.
func TestPlacedOrderIsPaidNotifiedAndCounted(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t)
	saleID, _ := activeSale(t, s, "Kettle", 5, 1)
	buyer, _, _ := s.Register(t, "kettle-buyer@example.test", "buyer-password", "Buyer")

	var placed struct {
		PlaceFlashSaleOrder struct{ ID, Status string }
	}
	s.Do(t, buyer, `mutation($id: ID!) { placeFlashSaleOrder(input: {flashSaleId: $id, quantity: 1, idempotencyKey: "once"}) { id status } }`,
		map[string]any{"id": saleID}).MustData(t, &placed)
	orderID := placed.PlaceFlashSaleOrder.ID

	testenv.Eventually(t, 30*time.Second, func() error {
		var got struct{ Order struct{ Status string } }
		s.Do(t, buyer, `query($id: ID!) { order(id: $id) { status } }`, map[string]any{"id": orderID}).MustData(t, &got)
		if got.Order.Status != "PAID" {
			return fmt.Errorf("order is %s, want PAID", got.Order.Status)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		var got struct {
			Me struct {
				Notifications struct {
					Edges []struct{ Node struct{ Kind string } }
				}
			}
		}
		s.Do(t, buyer, `{ me { notifications(first: 10) { edges { node { kind } } } } }`, nil).MustData(t, &got)
		kinds := map[string]int{}
		for _, e := range got.Me.Notifications.Edges {
			kinds[e.Node.Kind]++
		}
		if len(got.Me.Notifications.Edges) != 2 || kinds["order.placed"] != 1 || kinds["order.paid"] != 1 {
			return fmt.Errorf("notifications = %v, want one order.placed and one order.paid", kinds)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		var got struct {
			FlashSale struct {
				Stats struct{ Orders, UnitsSold, PaidOrders, Attempts int }
			}
		}
		s.Do(t, s.AdminToken(t), `query($id: ID!) { flashSale(id: $id) { stats { orders unitsSold paidOrders attempts } } }`,
			map[string]any{"id": saleID}).MustData(t, &got)
		st := got.FlashSale.Stats
		if st.Orders != 1 || st.UnitsSold != 1 || st.PaidOrders != 1 || st.Attempts != 1 {
			return fmt.Errorf("stats = %+v, want 1 order, 1 unit, 1 paid, 1 attempt", st)
		}
		return nil
	})
}

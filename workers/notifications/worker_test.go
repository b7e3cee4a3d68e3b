package notifications_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/workers/notifications"
)

func TestSettledOrdersSayWhetherTheBuyerWasRefunded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status                 flashsale.OrderStatus
		refunded               bool
		subject, says, notSays string
	}{
		{flashsale.OrderCancelled, true, "Order cancelled and refunded", "12.50 you paid has been refunded", "not been charged"},
		{flashsale.OrderCancelled, false, "Order cancelled", "not been charged", "refunded"},
		{flashsale.OrderExpired, true, "Reservation expired and refunded", "12.50 charged for it has been refunded", "not been charged"},
		{flashsale.OrderExpired, false, "Reservation expired", "not been charged", "refunded"},
	}
	for _, tt := range tests {
		e := flashsale.OrderEvent{Type: flashsale.EventOrderSettled, OrderID: 42, TotalCents: 1250, Status: tt.status, Refunded: tt.refunded}
		subject, body := notifications.Render(e)
		if subject != tt.subject || !strings.Contains(body, tt.says) || strings.Contains(body, tt.notSays) {
			t.Errorf("%s refunded=%v: got %q / %q; want subject %q, saying %q and not %q",
				tt.status, tt.refunded, subject, body, tt.subject, tt.says, tt.notSays)
		}
	}
}

// A cancel or an expiry is told once its payment is settled, not before: until then nobody
// knows whether a charge was landing.
func TestEndingsAreToldWithTheirSettlement(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	ctx := context.Background()
	u := &flashsale.User{Email: testenv.Name() + "@example.test", Name: "B", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := postgres.NewUserStore(db).CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewNotificationStore(db)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := notifications.NewWorker(store, notifications.LogSink{Log: log}, log)
	order := flashsale.NewOrderID(u.ID)
	event := func(typ string, status flashsale.OrderStatus, refunded bool) flashsale.OrderEvent {
		return flashsale.OrderEvent{EventID: uuid.NewString(), Type: typ, OrderID: order, UserID: u.ID, TotalCents: 900, Status: status, Refunded: refunded}
	}
	for _, e := range []flashsale.OrderEvent{
		event(flashsale.EventOrderCancelled, flashsale.OrderCancelled, false),
		event(flashsale.EventOrderExpired, flashsale.OrderExpired, false),
		event(flashsale.EventOrderSettlementDue, flashsale.OrderExpired, false),
	} {
		if err := w.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if list, _, err := store.ListNotifications(ctx, u.ID, 10, 0); err != nil || len(list) != 0 {
		t.Fatalf("notifications before the settlement = %d, %v; want none", len(list), err)
	}
	settled := event(flashsale.EventOrderSettled, flashsale.OrderCancelled, true)
	for range 2 { // and a redelivery
		if err := w.Handle(ctx, settled); err != nil {
			t.Fatal(err)
		}
	}
	list, _, err := store.ListNotifications(ctx, u.ID, 10, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("notifications = %d, %v; want 1", len(list), err)
	}
	if n := list[0]; n.Kind != flashsale.EventOrderSettled || n.Subject != "Order cancelled and refunded" || n.DeliveredAt == nil {
		t.Errorf("notification = %s %q delivered %v; want order.settled, \"Order cancelled and refunded\", delivered", n.Kind, n.Subject, n.DeliveredAt)
	}
}

package e2e_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// TestDemoSeedShowsASale seeds a fresh shop as `make run` does: a sale starts about a minute
// later and runs for an hour, the demo customer can sign in, and seeding again (a restart)
// keeps the same sale rather than adding another.
func TestDemoSeedShowsASale(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	before := time.Now()
	demo, err := app.SeedDemo(ctx, s.API, log)
	if err != nil {
		t.Fatal(err)
	}
	sale := demo.Sale
	if wait := sale.StartsAt.Sub(before); wait < 50*time.Second || wait > 70*time.Second {
		t.Errorf("the sale starts %v after seeding; want about a minute", wait)
	}
	if got := sale.EndsAt.Sub(sale.StartsAt); got != time.Hour {
		t.Errorf("the sale runs %v; want an hour", got)
	}
	var data struct {
		FlashSale struct{ ID, Status string }
	}
	s.Do(t, "", `query($id: ID!) { flashSale(id: $id) { id status } }`, map[string]any{"id": sale.ID.String()}).MustData(t, &data)
	if data.FlashSale.Status != "SCHEDULED" {
		t.Errorf("the demo sale's status is %q; want SCHEDULED", data.FlashSale.Status)
	}
	s.Login(t, app.DemoCustomerEmail, app.DemoCustomerPassword)

	again, err := app.SeedDemo(ctx, s.API, log)
	if err != nil {
		t.Fatal(err)
	}
	if again.Sale.ID != sale.ID {
		t.Errorf("seeding again made sale %s; want the scheduled %s kept", again.Sale.ID, sale.ID)
	}
}

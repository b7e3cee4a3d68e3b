package loadgen

import (
	"maps"
	"slices"
	"testing"
	"time"
)

func TestDrainOutcome(t *testing.T) {
	t.Parallel()
	last := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	end := last.Add(30 * time.Second)
	t.Run("all paid", func(t *testing.T) {
		t.Parallel()
		// The last order was created 50ms before its answer came (last); the polls, which
		// began once the burst was over, saw the orders PAID well after they turned PAID.
		created := last.Add(-50 * time.Millisecond)
		orders := map[string]*tracked{
			"a": {buyer: 0, seen: true, status: "PAID", createdAt: created.Add(-time.Second),
				paidAt: last.Add(200 * time.Millisecond), seenPaidAt: last.Add(2 * time.Second)},
			"b": {buyer: 1, seen: true, status: "PAID", createdAt: created,
				paidAt: last.Add(1500 * time.Millisecond), seenPaidAt: last.Add(2100 * time.Millisecond)},
		}
		d := drainOutcome(orders, nil, last, end, 0)
		if !d.drained || d.missing != 0 || len(d.unpaid) != 0 {
			t.Errorf("drainOutcome = %+v; want drained, nothing missing or unpaid", d)
		}
		if got, want := d.elapsed, 1550*time.Millisecond; got != want {
			t.Errorf("elapsed = %v; want %v, from the last createdAt to the last PAID updatedAt", got, want)
		}
		if got, want := d.observed, 2100*time.Millisecond; got != want {
			t.Errorf("observed = %v; want %v, from the last answer to the poll that saw the last PAID", got, want)
		}
	})
	t.Run("missing and unpaid", func(t *testing.T) {
		t.Parallel()
		orders := map[string]*tracked{
			"a": {buyer: 0, seen: true, status: "PAID", paidAt: last.Add(time.Second)},
			"b": {buyer: 1},
			"c": {buyer: 2, seen: true, status: "PENDING"},
			"d": {buyer: 3, seen: true, status: "CANCELLED"},
			"e": {buyer: 4, seen: true, status: "PENDING"},
			"f": {buyer: 5, seen: true, status: "PAID", paidAt: last.Add(time.Second)}, // paid, but not in its buyer's list
			"g": {buyer: 6},                                                            // never found by id
		}
		d := drainOutcome(orders, map[string]bool{"b": true, "f": true}, last, end, 3)
		if d.drained {
			t.Errorf("drained = true; want false")
		}
		if got, want := d.missing, 2; got != want {
			t.Errorf("missing = %d; want %d", got, want)
		}
		if want := map[string]int{"PENDING": 2, "CANCELLED": 1, "": 1}; !maps.Equal(d.unpaid, want) {
			t.Errorf("unpaid = %v; want %v", d.unpaid, want)
		}
		if got, want := d.elapsed, 30*time.Second; got != want {
			t.Errorf("elapsed = %v; want %v (until the drain gave up)", got, want)
		}
		if d.queryErrors != 3 {
			t.Errorf("queryErrors = %d; want 3", d.queryErrors)
		}
	})
}

func TestUnsettledOrders(t *testing.T) {
	t.Parallel()
	orders := map[string]*tracked{
		"a": {buyer: 5, status: "PAID"},
		"b": {buyer: 3},
		"c": {buyer: 3, status: "PENDING"},
		"d": {buyer: 1, status: "PENDING"},
		"e": {buyer: 7, status: "EXPIRED"},
		"f": {buyer: 8, status: "CANCELLED"},
	}
	if got, want := unsettledOrders(orders), []string{"b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("unsettledOrders = %v; want %v", got, want)
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	sale := func(id string) *struct {
		ID string `json:"id"`
	} {
		return &struct {
			ID string `json:"id"`
		}{ID: id}
	}
	orders := []orderView{
		{ID: "a", Status: "PAID", Quantity: 1, FlashSale: sale("s1")},
		{ID: "b", Status: "PENDING", Quantity: 2, FlashSale: sale("s1")},
		{ID: "c", Status: "CANCELLED", Quantity: 1, FlashSale: sale("s1")},
		{ID: "d", Status: "PAID", Quantity: 1, FlashSale: sale("s2")}, // another sale
		{ID: "e", Status: "PAID", Quantity: 1},                        // a regular order
		{ID: "f", Status: "PAID", Quantity: 1, FlashSale: sale("s1")}, // never acknowledged
		{ID: "a", Status: "PAID", Quantity: 1, FlashSale: sale("s1")}, // listed twice
	}
	known := map[string]bool{"a": true, "b": true, "c": true}
	got := tally(orders, "s1", known)
	want := censusResult{sold: 4, unacknowledged: 1}
	if got != want {
		t.Errorf("tally = %+v; want %+v", got, want)
	}
}

package analytics_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/workers/analytics"
)

func TestDecodeSkipsWhatDoesNotDecode(t *testing.T) {
	t.Parallel()
	encode := func(e flashsale.OrderEvent) []byte {
		t.Helper()
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := flashsale.OrderEvent{EventID: "e1", Type: flashsale.EventOrderPlaced, Quantity: 2}
	second := flashsale.OrderEvent{EventID: "e2", Type: flashsale.EventOrderPaid, Quantity: 1}
	values := [][]byte{encode(first), []byte("{not json"), encode(second), nil}

	var skipped []int
	got := analytics.Decode(values, func(i int, err error) {
		if err == nil {
			t.Errorf("skip(%d) with a nil error", i)
		}
		skipped = append(skipped, i)
	})

	if want := []int{1, 3}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
	if len(got) != 2 || got[0].EventID != first.EventID || got[1].EventID != second.EventID || got[0].Quantity != 2 {
		t.Errorf("got %+v, want the events %q and %q in order", got, first.EventID, second.EventID)
	}
}

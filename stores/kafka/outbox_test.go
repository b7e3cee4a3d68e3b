package kafka_test

import (
	"maps"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/stores/kafka"
)

func TestOutboxMessages(t *testing.T) {
	t.Parallel()
	events := []flashsale.OutboxEvent{
		{ID: 1, EventID: "e1", Type: flashsale.EventOrderPlaced, Key: "o1", Priority: 5, Payload: []byte(`{"a":1}`), TraceParent: "stored"},
		{ID: 2, EventID: "e2", Type: flashsale.EventOrderPaid, Key: "o2", Priority: 1, Payload: []byte(`{"b":2}`)},
	}
	got := kafka.OutboxMessages(events, []string{"00-trace-span-01", ""})
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2", len(got))
	}
	for i, want := range []kafka.Message{
		{Key: []byte("o1"), Value: []byte(`{"a":1}`), Headers: map[string]string{
			kafka.HeaderType: flashsale.EventOrderPlaced, kafka.HeaderEventID: "e1", kafka.HeaderTraceParent: "00-trace-span-01"}},
		{Key: []byte("o2"), Value: []byte(`{"b":2}`), Headers: map[string]string{
			kafka.HeaderType: flashsale.EventOrderPaid, kafka.HeaderEventID: "e2"}},
	} {
		m := got[i]
		if string(m.Key) != string(want.Key) || string(m.Value) != string(want.Value) || !maps.Equal(m.Headers, want.Headers) {
			t.Errorf("record %d = key %q value %q headers %v, want key %q value %q headers %v",
				i, m.Key, m.Value, m.Headers, want.Key, want.Value, want.Headers)
		}
	}
}

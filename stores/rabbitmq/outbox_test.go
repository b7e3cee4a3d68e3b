package rabbitmq

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale"
)

func TestOutboxMessages(t *testing.T) {
	t.Parallel()
	events := []flashsale.OutboxEvent{
		{ID: 1, EventID: "e1", Type: flashsale.EventOrderPlaced, Key: "o1", Priority: 5, Payload: []byte(`{"a":1}`), TraceParent: "stored"},
		{ID: 2, EventID: "e2", Type: flashsale.EventOrderPaid, Key: "o2", Priority: 1, Payload: []byte(`{"b":2}`)},
	}
	got := OutboxMessages(events, []string{"00-trace-span-01", ""})
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	for i, want := range []Message{
		{ID: "e1", RoutingKey: flashsale.EventOrderPlaced, Body: []byte(`{"a":1}`), Priority: 5, Headers: amqp.Table{HeaderTraceParent: "00-trace-span-01"}},
		{ID: "e2", RoutingKey: flashsale.EventOrderPaid, Body: []byte(`{"b":2}`), Priority: 1},
	} {
		m := got[i]
		if m.ID != want.ID || m.RoutingKey != want.RoutingKey || string(m.Body) != string(want.Body) || m.Priority != want.Priority {
			t.Errorf("message %d = %+v, want %+v", i, m, want)
		}
		if len(m.Headers) != len(want.Headers) || m.Headers[HeaderTraceParent] != want.Headers[HeaderTraceParent] {
			t.Errorf("message %d headers = %v, want %v (the given trace parent, not the stored one)", i, m.Headers, want.Headers)
		}
	}
}

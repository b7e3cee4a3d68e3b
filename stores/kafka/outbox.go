package kafka

import "github.com/flashsale/flashsale"

// Headers of the records made from outbox events.
const (
	// HeaderType holds the event type.
	HeaderType = "type"
	// HeaderEventID holds the event id, by which consumers count each event once.
	HeaderEventID = "event-id"
	// HeaderTraceParent holds the W3C trace context, so that a consumer's span joins the
	// trace of the request that wrote the event.
	HeaderTraceParent = "traceparent"
)

// OutboxMessages returns the records of outbox events, keyed by the events' partition keys so
// that an order's events keep their order. traceParents[i], when not empty, is the trace
// context events[i] carries: it is given apart because the relay may put its own producer
// span between the request that wrote the event and the consumer.
func OutboxMessages(events []flashsale.OutboxEvent, traceParents []string) []Message {
	msgs := make([]Message, len(events))
	for i, e := range events {
		msgs[i] = Message{Key: []byte(e.Key), Value: e.Payload, Headers: map[string]string{HeaderType: e.Type, HeaderEventID: e.EventID}}
		if traceParents[i] != "" {
			msgs[i].Headers[HeaderTraceParent] = traceParents[i]
		}
	}
	return msgs
}

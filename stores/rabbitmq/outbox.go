package rabbitmq

import (
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale"
)

// HeaderTraceParent carries a message's W3C trace context, so that a consumer's span joins
// the trace of the request that wrote the event.
const HeaderTraceParent = "traceparent"

// OutboxMessages returns the messages of outbox events, routed by event type and carrying
// the event id for consumers to deduplicate by. traceParents[i], when not empty, is the trace
// context events[i] carries: it is given apart because the relay may put its own producer
// span between the request that wrote the event and the consumer.
func OutboxMessages(events []flashsale.OutboxEvent, traceParents []string) []Message {
	msgs := make([]Message, len(events))
	for i, e := range events {
		msgs[i] = Message{ID: e.EventID, RoutingKey: e.Type, Body: e.Payload, Priority: e.Priority}
		if traceParents[i] != "" {
			msgs[i].Headers = amqp.Table{HeaderTraceParent: traceParents[i]}
		}
	}
	return msgs
}

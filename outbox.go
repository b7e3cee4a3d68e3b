package flashsale

// OutboxEvent is an order event waiting in a shard's outbox, as a relay hands it to a broker.
// It is written in the same transaction as the change it tells of and sent at least once.
type OutboxEvent struct {
	ID       int64 // the outbox row, which the relay marks sent
	EventID  string
	Type     string // one of the Event* types
	Key      string // partition key: the order id (OrderEvent.PartitionKey)
	Priority uint8
	Payload  []byte // the OrderEvent, as JSON
	// TraceParent is the W3C trace context of the request that wrote the event ("" if it
	// was not traced).
	TraceParent string
}

// OutboxDestination is a broker the outbox is sent to. Each event is marked sent to each
// destination on its own, so an outage of one broker holds back no other.
type OutboxDestination string

// The destinations of the outbox.
const (
	ToRabbitMQ OutboxDestination = "rabbitmq" // for the payment and notification workers
	ToKafka    OutboxDestination = "kafka"    // for analytics
)

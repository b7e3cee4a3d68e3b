package rabbitmq

import (
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Headers this package sets on messages it moves between queues. Operators reading a
// dead-letter queue find the attempt count and the last error in them.
const (
	// HeaderAttempt holds the 1-based number of the attempt a delivery is for; a message
	// without it is on its first attempt.
	HeaderAttempt = "x-attempt"
	// HeaderLastError holds the handler's last error on a retried or dead-lettered message.
	HeaderLastError = "x-last-error"
	// HeaderRoutingKey holds a retried message's original routing key: coming back from a
	// delay queue it is routed by its queue's name instead.
	HeaderRoutingKey = "x-original-routing-key"
)

// maxErrorHeader caps HeaderLastError, so that a huge error cannot make the message too
// large for the broker.
const maxErrorHeader = 1024

// Message is one message to publish.
type Message struct {
	// ID becomes the AMQP message-id; consumers deduplicate by it.
	ID string
	// RoutingKey selects the queues the topic exchange routes the message to.
	RoutingKey string
	// Body is the payload, opaque to this package.
	Body []byte
	// Priority lets a message overtake lower ones in a queue; main queues honour 0 to 10.
	Priority uint8
	// Headers are optional application headers.
	Headers amqp.Table
}

// publishing returns m as a persistent AMQP message.
func (m Message) publishing() amqp.Publishing {
	return amqp.Publishing{
		MessageId:    m.ID,
		Body:         m.Body,
		Priority:     m.Priority,
		Headers:      m.Headers,
		DeliveryMode: amqp.Persistent,
		Timestamp:    time.Now(),
	}
}

// Delivery is one message handed to a consumer's handler.
type Delivery struct {
	// MessageID is the publisher's Message.ID.
	MessageID string
	// RoutingKey is the key the message was first published with, also after retries.
	RoutingKey string
	// Body is the payload.
	Body []byte
	// Priority is the message's priority.
	Priority uint8
	// Attempt is the 1-based number of this attempt to handle the message. A redelivery
	// after a consumer died mid-message does not count as a new attempt.
	Attempt int
	// Redelivered is true when the broker delivered the message before without an ack, for
	// instance to a consumer that stopped while handling it.
	Redelivered bool
	// Headers are the message's headers, including those of this package.
	Headers amqp.Table
}

// newDelivery converts an AMQP delivery.
func newDelivery(d amqp.Delivery) Delivery {
	key := d.RoutingKey
	if k, ok := d.Headers[HeaderRoutingKey].(string); ok {
		key = k
	}
	return Delivery{
		MessageID:   d.MessageId,
		RoutingKey:  key,
		Body:        d.Body,
		Priority:    d.Priority,
		Attempt:     attempt(d.Headers),
		Redelivered: d.Redelivered,
		Headers:     d.Headers,
	}
}

// attempt reads HeaderAttempt, which the broker may hand back as any integer type.
func attempt(h amqp.Table) int {
	var n int64
	switch v := h[HeaderAttempt].(type) {
	case int:
		n = int64(v)
	case int8:
		n = int64(v)
	case int16:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	}
	if n < 1 {
		return 1
	}
	return int(n)
}

// isBrokerHeader reports whether RabbitMQ set header k when it dead-lettered a message.
// Those headers describe the trip through a delay queue that has just ended, so a
// forwarded copy leaves them behind.
func isBrokerHeader(k string) bool {
	return k == "x-death" || strings.HasPrefix(k, "x-first-death-") ||
		strings.HasPrefix(k, "x-last-death-")
}

// forwardCopy returns a persistent copy of d to publish to a delay or dead-letter queue,
// with headers set on top of d's own.
func forwardCopy(d amqp.Delivery, set amqp.Table) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+len(set)+1)
	for k, v := range d.Headers {
		if !isBrokerHeader(k) {
			h[k] = v
		}
	}
	if _, ok := h[HeaderRoutingKey]; !ok {
		h[HeaderRoutingKey] = d.RoutingKey
	}
	for k, v := range set {
		h[k] = v
	}
	// UserId and Expiration stay behind: the broker rejects a user-id other than the
	// connection's own, and a per-message TTL would fight the delay queue's.
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

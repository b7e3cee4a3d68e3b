// Package kafka carries analytics events over Kafka: a Producer that returns once the
// brokers have acknowledged a write, Consume for at-least-once consumer groups, Ping and
// CreateTopic for readiness and setup, and an embedded broker (StartEmbedded) so that
// development and tests need no Kafka server.
//
// The clients are github.com/segmentio/kafka-go; the embedded broker is franz-go's kfake,
// which speaks the Kafka protocol well enough for kafka-go's producer, fetcher and classic
// consumer-group protocol.
package kafka

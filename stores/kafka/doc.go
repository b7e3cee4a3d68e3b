// Package kafka carries analytics events over Kafka: a Producer that returns once the
// brokers have acknowledged a write, Consume for at-least-once consumer groups, Ping and
// CreateTopic for readiness and setup, and an embedded broker (StartEmbedded) so that
// development and tests need no Kafka server.
//
// The producer and the admin calls use github.com/segmentio/kafka-go. Consume uses franz-go's
// client (github.com/twmb/franz-go/pkg/kgo), which batches fetched records natively and
// drops the commits of records whose partition a rebalance moved away. The embedded broker
// is franz-go's kfake, which speaks the Kafka protocol for both clients.
package kafka

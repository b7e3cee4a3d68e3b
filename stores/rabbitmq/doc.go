// Package rabbitmq carries orders and other domain events over RabbitMQ with at-least-once
// delivery: a Publisher that returns only once the broker has confirmed every message,
// Consume for manual-ack consumers that retry a failing message with growing delays and
// finally park it in a dead-letter queue, DeclareTopology for the exchange and queues both
// rely on, and Ping for readiness checks.
//
// Messages may arrive more than once (a relay retries after a lost confirm, a consumer dies
// before its ack), so consumers deduplicate by Message.ID, which travels as the AMQP
// message-id.
//
// The client is github.com/rabbitmq/amqp091-go with its experimental automatic recovery
// left off: the Publisher redials lazily on the next Publish and Consume redials with
// backoff, so that every reconnect is visible in this package and bounded by a context.
package rabbitmq

package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// producerBatchTimeout is how long the writer waits to fill a batch. kafka-go's default of
// 1s would hold every synchronous Send for a second; a few milliseconds still batches the
// records of one Send, and of concurrent Sends, together.
const producerBatchTimeout = 5 * time.Millisecond

// Producer writes records to one topic. It is safe for concurrent use; share one per topic,
// since concurrent Sends are batched together.
type Producer struct {
	w         *kafkago.Writer
	transport *kafkago.Transport
	topic     string
	err       error // options that cannot work: every Send fails with it
}

// NewProducer returns a Producer for topic. It connects lazily, on the first Send, which
// fails if opts cannot work (an unknown SASL mechanism).
func NewProducer(brokers []string, topic string, log *slog.Logger, opts ...Option) *Producer {
	log = log.With("topic", topic)
	// A transport of our own, rather than kafka-go's shared DefaultTransport, so that Close
	// can close its connections.
	transport, err := buildOptions(opts).transport()
	if err != nil {
		transport = &kafkago.Transport{ClientID: clientID}
	}
	return &Producer{
		err: err,
		w: &kafkago.Writer{
			Addr:  kafkago.TCP(brokers...),
			Topic: topic,
			// Murmur2 is the Java client's partitioner: a key lands on the same partition
			// whichever client produced it, and keeps its order there.
			Balancer:     &kafkago.Murmur2Balancer{},
			RequiredAcks: kafkago.RequireAll,
			BatchTimeout: producerBatchTimeout,
			Transport:    transport,
			ErrorLogger:  kafkaLogger(log, slog.LevelWarn),
		},
		transport: transport,
		topic:     topic,
	}
}

// Send writes msgs and returns once every in-sync replica has acknowledged them, or with an
// error when some were not written (kafka-go retries a failing write up to ten times first).
// Records with the same key are written in the order given.
func (p *Producer) Send(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if p.err != nil {
		return fmt.Errorf("kafka: send to %s: %w", p.topic, p.err)
	}
	kms := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = toKafka(m)
	}
	if err := p.w.WriteMessages(ctx, kms...); err != nil {
		return fmt.Errorf("kafka: send %d messages to %s: %w", len(msgs), p.topic, err)
	}
	return nil
}

// Close waits for writes in flight and closes the producer's connections. Send fails after
// Close.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka: close producer for %s: %w", p.topic, err)
	}
	return nil
}

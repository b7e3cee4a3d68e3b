package kafka

import (
	"errors"
	"maps"
	"slices"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Message is one record. Send reads Key, Value and Headers; Consume also fills in where the
// record was read from, which a handler can use to log it or to make processing idempotent.
type Message struct {
	// Key picks the partition: records with the same key keep their order.
	Key     []byte
	Value   []byte
	Headers map[string]string

	// Topic, Partition, Offset and Time are set by Consume and ignored by Send.
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time
}

// ErrPoison is returned (or wrapped) by a handler for a record it can never process, such as
// one that does not decode. Consume skips such a record, logging it and committing past it,
// once it has failed with ErrPoison ConsumerConfig.PoisonAttempts times; every other error is
// retried until the context ends, so that no record is lost to a passing outage.
var ErrPoison = errors.New("kafka: poison message")

func toKafka(m Message) kafkago.Message {
	km := kafkago.Message{Key: m.Key, Value: m.Value}
	// Sorted so that equal messages are equal bytes on the wire.
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		km.Headers = append(km.Headers, kafkago.Header{Key: k, Value: []byte(m.Headers[k])})
	}
	return km
}

func fromRecord(r *kgo.Record) Message {
	m := Message{
		Key:       r.Key,
		Value:     r.Value,
		Topic:     r.Topic,
		Partition: int(r.Partition),
		Offset:    r.Offset,
		Time:      r.Timestamp,
	}
	if len(r.Headers) > 0 {
		m.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			m.Headers[h.Key] = string(h.Value)
		}
	}
	return m
}

package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

func TestConsumeAllKeyedInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(4)
	const keys, perKey = 20, 50
	var msgs []kafka.Message
	for seq := range perKey {
		for k := range keys {
			msgs = append(msgs, kafka.Message{
				Key:     fmt.Appendf(nil, "key-%02d", k),
				Value:   []byte(strconv.Itoa(seq)),
				Headers: map[string]string{"seq": strconv.Itoa(seq)},
			})
		}
	}
	// Several Sends, so that order is checked within one Send and across Sends.
	for chunk := range slices.Chunk(msgs, 250) {
		e.send(topic, chunk...)
	}
	// Send returns only once the broker acknowledged, so every record is there already.
	if got, want := sum(e.endOffsets(topic)), int64(len(msgs)); got != want {
		t.Fatalf("records on the broker after Send = %d, want %d", got, want)
	}

	var (
		mu          sync.Mutex
		seqs        = map[string][]int{}
		partitionOf = map[string]int{}
		handled     int
		problems    []string
	)
	group := testenv.Name()
	stop := e.consume(topic, group, func(_ context.Context, m kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		key := string(m.Key)
		seq, err := strconv.Atoi(string(m.Value))
		if err != nil || m.Headers["seq"] != string(m.Value) || m.Topic != topic {
			problems = append(problems, fmt.Sprintf("record %+v", m))
		}
		if p, ok := partitionOf[key]; ok && p != m.Partition {
			problems = append(problems, fmt.Sprintf("key %s on partitions %d and %d", key, p, m.Partition))
		}
		partitionOf[key] = m.Partition
		seqs[key] = append(seqs[key], seq)
		handled++
		return nil
	})
	waitFor(t, 30*time.Second, "every record to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled >= len(msgs)
	})
	waitFor(t, 10*time.Second, "every offset to be committed", func() bool {
		return slices.Equal(e.committed(group, topic), e.endOffsets(topic))
	})
	stop()

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if handled != len(msgs) {
		t.Errorf("handled %d records, want %d (a single consumer should see each once)", handled, len(msgs))
	}
	want := upTo(perKey)
	for k := range keys {
		key := fmt.Sprintf("key-%02d", k)
		if got := seqs[key]; !slices.Equal(got, want) {
			t.Errorf("key %s: handled sequence %v, want %v", key, got, want)
		}
	}
}

func TestConsumeTwoConsumersShareGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(4)
	group := testenv.Name()

	var (
		mu         sync.Mutex
		byConsumer [2]int
		seen       = map[string]bool{}
	)
	handler := func(i int) func(context.Context, kafka.Message) error {
		return func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			byConsumer[i]++
			seen[string(m.Value)] = true
			return nil
		}
	}
	stopA := e.consume(topic, group, handler(0))
	stopB := e.consume(topic, group, handler(1))
	// Produce only once both hold partitions, so that both get records.
	waitFor(t, 20*time.Second, "both consumers to hold partitions", func() bool {
		a := e.assigned(group)
		if len(a) != 2 {
			return false
		}
		for _, n := range a {
			if n == 0 {
				return false
			}
		}
		return true
	})

	const total = 200
	msgs := make([]kafka.Message, total)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "key-%d", i%40), Value: fmt.Appendf(nil, "old-%03d", i)}
	}
	e.send(topic, msgs...)
	waitFor(t, 30*time.Second, "every record to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	})
	mu.Lock()
	if byConsumer[0] == 0 || byConsumer[1] == 0 {
		t.Errorf("records handled by each consumer = %v, want both > 0", byConsumer)
	}
	mu.Unlock()
	waitFor(t, 10*time.Second, "both consumers to commit", func() bool {
		return slices.Equal(e.committed(group, topic), e.endOffsets(topic))
	})
	stopA()
	stopB()

	e.resumesAfterCommitted(t, topic, func(record func(kafka.Message)) func() {
		return e.consume(topic, group, func(_ context.Context, m kafka.Message) error {
			record(m)
			return nil
		})
	})
}

func TestConsumeRetriesTransientFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	group := testenv.Name()
	e.send(topic,
		kafka.Message{Key: []byte("k"), Value: []byte("first")},
		kafka.Message{Key: []byte("k"), Value: []byte("second")})

	var (
		mu       sync.Mutex
		calls    []string
		failures = 2
	)
	stop := e.consumeWith(kafka.ConsumerConfig{
		Topic: topic, GroupID: group, RetryMin: 10 * time.Millisecond,
		Handler: func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, string(m.Value))
			if string(m.Value) == "first" && failures > 0 {
				failures--
				return errors.New("analytics store unavailable")
			}
			return nil
		},
	})
	waitFor(t, 20*time.Second, "the second record to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(calls, "second")
	})
	waitFor(t, 10*time.Second, "both records to be committed", func() bool {
		return slices.Equal(e.committed(group, topic), []int64{2})
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"first", "first", "first", "second"}; !slices.Equal(calls, want) {
		t.Errorf("handler calls = %q, want %q", calls, want)
	}
}

func TestConsumeSkipsPoisonAfterAttempts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	group := testenv.Name()
	e.send(topic,
		kafka.Message{Key: []byte("k"), Value: []byte("not json")},
		kafka.Message{Key: []byte("k"), Value: []byte("good")})

	var (
		mu    sync.Mutex
		calls []string
	)
	stop := e.consumeWith(kafka.ConsumerConfig{
		Topic: topic, GroupID: group, PoisonAttempts: 2, RetryMin: 10 * time.Millisecond,
		Handler: func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, string(m.Value))
			if string(m.Value) != "good" {
				return fmt.Errorf("decode event: %w", kafka.ErrPoison)
			}
			return nil
		},
	})
	waitFor(t, 20*time.Second, "both records to be committed", func() bool {
		return slices.Equal(e.committed(group, topic), []int64{2})
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"not json", "not json", "good"}; !slices.Equal(calls, want) {
		t.Errorf("handler calls = %q, want %q", calls, want)
	}
}

func TestConsumeStoppedBeforeCommitRedelivers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	group := testenv.Name()
	e.send(topic, kafka.Message{Key: []byte("k"), Value: []byte("only")})

	// The first consumer is stopped while its handler is still at work.
	started := make(chan struct{})
	stopA := e.consume(topic, group, func(ctx context.Context, _ kafka.Message) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("first consumer got no record within 20s")
	}
	stopA()
	if got, want := e.committed(group, topic), []int64{-1}; !slices.Equal(got, want) {
		t.Fatalf("committed offsets after the stop = %v, want %v", got, want)
	}

	got := make(chan kafka.Message, 1)
	e.consume(topic, group, func(_ context.Context, m kafka.Message) error {
		select {
		case got <- m:
		default:
		}
		return nil
	})
	select {
	case m := <-got:
		if string(m.Value) != "only" || m.Offset != 0 {
			t.Errorf("next consumer got %q at offset %d, want %q at 0", m.Value, m.Offset, "only")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the record was not redelivered to the next consumer within 20s")
	}
}

func TestConsumeRejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	handler := func(context.Context, kafka.Message) error { return nil }
	full := kafka.ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", GroupID: "g", Handler: handler}
	tests := []struct {
		name   string
		modify func(*kafka.ConsumerConfig)
	}{
		{"no brokers", func(c *kafka.ConsumerConfig) { c.Brokers = nil }},
		{"no topic", func(c *kafka.ConsumerConfig) { c.Topic = "" }},
		{"no group", func(c *kafka.ConsumerConfig) { c.GroupID = "" }},
		{"no handler", func(c *kafka.ConsumerConfig) { c.Handler = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := full
			tt.modify(&cfg)
			if err := kafka.Consume(context.Background(), cfg); err == nil {
				t.Errorf("Consume with %s = nil, want an error", tt.name)
			}
		})
	}
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

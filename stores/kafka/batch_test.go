package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// consumeBatches runs Consume in batch mode, like consume.
func (e *env) consumeBatches(topic, group string, maxBatch int, handler func(context.Context, []kafka.Message) error) (stop func()) {
	e.t.Helper()
	return e.consumeWith(kafka.ConsumerConfig{Topic: topic, GroupID: group, MaxBatch: maxBatch, BatchHandler: handler})
}

func TestConsumeBatchesDeliverEachRecordOnceInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(4)
	const keys, perKey, maxBatch = 20, 50, 64
	var msgs []kafka.Message
	for seq := range perKey {
		for k := range keys {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "key-%02d", k), Value: []byte(strconv.Itoa(seq))})
		}
	}
	for chunk := range slices.Chunk(msgs, 250) {
		e.send(topic, chunk...)
	}

	var (
		mu          sync.Mutex
		seqs        = map[string][]int{}
		offsets     = map[int][]int64{}
		partitionOf = map[string]int{}
		sizes       []int
		handled     int
		problems    []string
	)
	group := testenv.Name()
	stop := e.consumeBatches(topic, group, maxBatch, func(_ context.Context, batch []kafka.Message) error {
		// Slow enough for records to pile up behind the batch: the next one must take them.
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(batch))
		for _, m := range batch {
			key := string(m.Key)
			seq, err := strconv.Atoi(string(m.Value))
			if err != nil || m.Topic != topic {
				problems = append(problems, fmt.Sprintf("record %+v", m))
			}
			if p, ok := partitionOf[key]; ok && p != m.Partition {
				problems = append(problems, fmt.Sprintf("key %s on partitions %d and %d", key, p, m.Partition))
			}
			partitionOf[key] = m.Partition
			seqs[key] = append(seqs[key], seq)
			offsets[m.Partition] = append(offsets[m.Partition], m.Offset)
			handled++
		}
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
	ends := e.endOffsets(topic)
	for p, got := range offsets {
		if want := upTo(int(ends[p])); !slices.EqualFunc(got, want, func(o int64, i int) bool { return o == int64(i) }) {
			t.Errorf("partition %d: handled offsets %v, want 0 to %d in order", p, got, ends[p]-1)
		}
	}
	t.Logf("batch sizes: %v", sizes)
	if largest := slices.Max(sizes); largest < 2 || largest > maxBatch {
		t.Errorf("largest batch = %d, want more than 1 and at most %d (sizes %v)", largest, maxBatch, sizes)
	}
	mu.Unlock()

	e.resumesAfterCommitted(t, topic, func(record func(kafka.Message)) func() {
		return e.consumeBatches(topic, group, maxBatch, func(_ context.Context, batch []kafka.Message) error {
			for _, m := range batch {
				record(m)
			}
			return nil
		})
	})
}

// A lone record is handed over at once, in a batch of its own, without waiting for more.
func TestConsumeBatchesHandLoneRecordAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	got := make(chan []kafka.Message, 10)
	e.consumeBatches(topic, testenv.Name(), 0, func(_ context.Context, batch []kafka.Message) error {
		got <- batch
		return nil
	})
	for i := range 3 {
		value := fmt.Sprintf("lone-%d", i)
		e.send(topic, kafka.Message{Key: []byte("k"), Value: []byte(value)})
		select {
		case batch := <-got:
			if len(batch) != 1 || string(batch[0].Value) != value {
				t.Fatalf("batch %d = %d records, first %q; want just %q", i, len(batch), batch[0].Value, value)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("record %d was not handled within 20s", i)
		}
	}
}

// A batch is committed only once its handler succeeded: while the handler fails or is busy,
// nothing of it is.
func TestConsumeBatchesCommitOnlyAfterSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	group := testenv.Name()
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	e.send(topic, msgs...)

	var (
		mu       sync.Mutex
		calls    int
		handled  = map[string]int{}
		failing  = true
		released = make(chan struct{})
	)
	e.consumeWith(kafka.ConsumerConfig{
		Topic: topic, GroupID: group, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		BatchHandler: func(_ context.Context, batch []kafka.Message) error {
			mu.Lock()
			calls++
			fail := failing
			mu.Unlock()
			if fail {
				return errors.New("analytics store unavailable")
			}
			<-released
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				handled[string(m.Value)]++
			}
			return nil
		},
	})
	waitFor(t, 20*time.Second, "the handler to be retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 3
	})
	if got := e.committed(group, topic); slices.ContainsFunc(got, func(o int64) bool { return o > 0 }) {
		t.Fatalf("committed offsets while the handler fails = %v, want none", got)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	// The handler now succeeds but is held: still nothing may be committed.
	time.Sleep(200 * time.Millisecond)
	if got := e.committed(group, topic); slices.ContainsFunc(got, func(o int64) bool { return o > 0 }) {
		t.Fatalf("committed offsets while the handler works = %v, want none", got)
	}
	close(released)
	waitFor(t, 20*time.Second, "every record to be committed", func() bool {
		return slices.Equal(e.committed(group, topic), e.endOffsets(topic))
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range msgs {
		if handled[string(m.Value)] < 1 {
			t.Errorf("record %s was committed but never handled", m.Value)
		}
	}
}

// A batch failing with ErrPoison is split, so that its poison record is skipped alone and the
// records around it are still handled.
func TestConsumeBatchesSkipPoisonRecordAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	group := testenv.Name()
	values := []string{"a", "b", "poison", "c", "d"}
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: []byte(v)})
	}
	e.send(topic, msgs...)

	var (
		mu      sync.Mutex
		handled []string
	)
	held := make(chan struct{})
	stop := e.consumeWith(kafka.ConsumerConfig{
		Topic: topic, GroupID: group, PoisonAttempts: 2, RetryMin: 10 * time.Millisecond,
		BatchHandler: func(_ context.Context, batch []kafka.Message) error {
			if string(batch[0].Value) == "a" && len(batch) < len(values) {
				// The first fetch may hand over "a" alone: hold it until the others queued
				// behind it, so that the poison record arrives in a batch with good ones.
				select {
				case <-held:
				default:
					close(held)
					time.Sleep(300 * time.Millisecond)
				}
			}
			for _, m := range batch {
				if string(m.Value) == "poison" {
					return fmt.Errorf("decode event: %w", kafka.ErrPoison)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				handled = append(handled, string(m.Value))
			}
			return nil
		},
	})
	waitFor(t, 20*time.Second, "every record to be committed", func() bool {
		return slices.Equal(e.committed(group, topic), []int64{int64(len(values))})
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(handled, want) {
		t.Errorf("handled %q, want %q", handled, want)
	}
}

func TestConsumeRejectsBothHandlers(t *testing.T) {
	t.Parallel()
	err := kafka.Consume(context.Background(), kafka.ConsumerConfig{
		Brokers: []string{"127.0.0.1:1"}, Topic: "t", GroupID: "g",
		Handler:      func(context.Context, kafka.Message) error { return nil },
		BatchHandler: func(context.Context, []kafka.Message) error { return nil },
	})
	if err == nil {
		t.Error("Consume with both Handler and BatchHandler = nil, want an error")
	}
}

func TestStoppingBatchConsumerFinishesAndCommitsTheBatchInHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	group := testenv.Name()
	e.send(topic, kafka.Message{Key: []byte("k"), Value: []byte("first")})

	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Int32
	stop := e.consumeWith(kafka.ConsumerConfig{Topic: topic, GroupID: group, DrainTimeout: 20 * time.Second,
		BatchHandler: func(ctx context.Context, msgs []kafka.Message) error {
			close(started)
			select {
			case <-release: // counting that outlasts the stop
			case <-ctx.Done():
				return ctx.Err()
			}
			finished.Add(int32(len(msgs)))
			return nil
		}})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer got no record within 20s")
	}
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	time.Sleep(200 * time.Millisecond) // the stop has begun, and waits for the handler
	select {
	case <-stopped:
		t.Fatal("Consume returned while its handler was still working")
	default:
	}
	close(release)
	<-stopped
	if got := finished.Load(); got != 1 {
		t.Errorf("handled %d records during the stop; want the one in hand", got)
	}
	if got, want := e.committed(group, topic), []int64{1}; !slices.Equal(got, want) {
		t.Errorf("committed offsets after the stop = %v, want %v: the batch in hand committed", got, want)
	}
}

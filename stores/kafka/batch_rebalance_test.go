package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// A second member joins while the first is handling batches with records prefetched behind
// them: some of those records' partitions move to the newcomer. Records may then be handled
// twice (at least once allows it), but none may be lost, and the group's committed offsets
// must end at the topic's end without passing a record nobody handled: a third member
// started afterwards is handed nothing old.
func TestConsumeBatchesSurviveARebalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(4)
	group := testenv.Name()
	const total, maxBatch = 2000, 32

	var (
		mu      sync.Mutex
		handled = map[string]int{}
		by      [2]int
	)
	// The first member pauses, with records prefetched behind its batch, from the moment a
	// tenth is handled until the second holds partitions.
	rebalanced := make(chan struct{})
	handler := func(member int) func(context.Context, []kafka.Message) error {
		return func(ctx context.Context, batch []kafka.Message) error {
			mu.Lock()
			paused := member == 0 && by[0] >= total/10
			mu.Unlock()
			if paused {
				select {
				case <-rebalanced:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				handled[string(m.Value)]++
				by[member]++
			}
			return nil
		}
	}
	stopA := e.consumeBatches(topic, group, maxBatch, handler(0))
	msgs := make([]kafka.Message, total)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "key-%d", i%97), Value: fmt.Appendf(nil, "rec-%04d", i)}
	}
	for chunk := range slices.Chunk(msgs, 200) {
		e.send(topic, chunk...)
	}
	waitFor(t, 20*time.Second, "the first member to be under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return by[0] >= total/10
	})
	stopB := e.consumeBatches(topic, group, maxBatch, handler(1)) // the rebalance
	waitFor(t, 20*time.Second, "both members to hold partitions", func() bool {
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
	close(rebalanced)
	waitFor(t, 60*time.Second, "every record to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == total
	})
	waitFor(t, 20*time.Second, "the group to commit to the end", func() bool {
		return slices.Equal(e.committed(group, topic), e.endOffsets(topic))
	})
	stopA()
	stopB()
	mu.Lock()
	if by[1] == 0 {
		t.Errorf("the member that joined handled nothing (%v): no rebalance was exercised", by)
	}
	for i := range total {
		if handled[fmt.Sprintf("rec-%04d", i)] == 0 {
			t.Errorf("record rec-%04d was never handled", i)
		}
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

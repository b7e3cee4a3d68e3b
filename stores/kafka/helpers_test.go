package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// testLog returns a logger whose output is shown only if the test fails. It buffers rather
// than calling t.Log because the broker's goroutines may still log after the test ends.
func testLog(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one test's broker, logger and admin client.
type env struct {
	t       *testing.T
	log     *slog.Logger
	brokers []string
	admin   *kafkago.Client
}

// newEnv starts a broker of this test's own and stops it when the test ends.
func newEnv(t *testing.T) *env {
	t.Helper()
	log := testLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := kafka.StartEmbedded(ctx, log)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Close)
	transport := &kafkago.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &env{
		t:       t,
		log:     log,
		brokers: e.Brokers(),
		admin:   &kafkago.Client{Addr: kafkago.TCP(e.Brokers()...), Transport: transport, Timeout: 10 * time.Second},
	}
}

// topic creates a topic with a unique name.
func (e *env) topic(partitions int) string {
	e.t.Helper()
	name := testenv.Name()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.CreateTopic(ctx, e.brokers, name, partitions); err != nil {
		e.t.Fatalf("CreateTopic(%s): %v", name, err)
	}
	return name
}

// send produces msgs to topic and fails the test if they are not acknowledged.
func (e *env) send(topic string, msgs ...kafka.Message) {
	e.t.Helper()
	p := kafka.NewProducer(e.brokers, topic, e.log)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Send(ctx, msgs...); err != nil {
		e.t.Fatalf("Send: %v", err)
	}
}

// consume runs Consume in a goroutine until the returned stop is called, or the test ends.
// stop waits for Consume to return.
func (e *env) consume(topic, group string, handler func(context.Context, kafka.Message) error) (stop func()) {
	e.t.Helper()
	return e.consumeWith(kafka.ConsumerConfig{Topic: topic, GroupID: group, Handler: handler})
}

func (e *env) consumeWith(cfg kafka.ConsumerConfig) (stop func()) {
	e.t.Helper()
	cfg.Brokers = e.brokers
	cfg.Log = e.log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kafka.Consume(ctx, cfg) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Consume: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("Consume did not return within 30s of its context ending")
		}
	})
	e.t.Cleanup(stop)
	return stop
}

// partitions returns the number of partitions of topic.
func (e *env) partitions(topic string) int {
	e.t.Helper()
	resp, err := e.admin.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].Error != nil {
		e.t.Fatalf("metadata of %s: %v %+v", topic, err, resp)
	}
	return len(resp.Topics[0].Partitions)
}

// endOffsets returns each partition's next offset: the number of records it holds.
func (e *env) endOffsets(topic string) []int64 {
	e.t.Helper()
	n := e.partitions(topic)
	reqs := make([]kafkago.OffsetRequest, n)
	for p := range n {
		reqs[p] = kafkago.LastOffsetOf(p)
	}
	resp, err := e.admin.ListOffsets(context.Background(), &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{topic: reqs},
	})
	if err != nil {
		e.t.Fatalf("list offsets of %s: %v", topic, err)
	}
	ends := make([]int64, n)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			e.t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	return ends
}

// committed returns group's committed offset for each partition of topic, -1 for none.
func (e *env) committed(group, topic string) []int64 {
	e.t.Helper()
	n := e.partitions(topic)
	resp, err := e.admin.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{topic: upTo(n)},
	})
	offsets := make([]int64, n)
	// kfake answers GROUP_ID_NOT_FOUND for a group that has not joined or committed yet,
	// where Kafka answers offset -1 for each partition.
	if err == nil && errors.Is(resp.Error, kafkago.GroupIdNotFound) {
		for p := range offsets {
			offsets[p] = -1
		}
		return offsets
	}
	if err != nil || resp.Error != nil {
		e.t.Fatalf("offset fetch of %s: %v %v", group, err, resp.Error)
	}
	for _, po := range resp.Topics[topic] {
		offsets[po.Partition] = po.CommittedOffset
	}
	return offsets
}

// assigned returns how many partitions each member of group holds, by member id, or nil
// while the group is not stable. It asks with franz-go's request types, which decode the
// members' assignments whatever version of the consumer protocol they use.
func (e *env) assigned(group string) map[string]int {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		e.t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		e.t.Fatalf("describe group %s: %v", group, err)
	}
	got := map[string]int{}
	for _, g := range resp.Groups {
		if g.State != "Stable" {
			return nil
		}
		for _, m := range g.Members {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(m.MemberAssignment); err != nil {
				e.t.Fatalf("decode the assignment of %s: %v", m.MemberID, err)
			}
			for _, tp := range a.Topics {
				got[m.MemberID] += len(tp.Partitions)
			}
		}
	}
	return got
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyFor returns a key that the producer's partitioner sends to partition p of n.
func keyFor(p, n int) []byte {
	parts := upTo(n)
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "probe-%d", i)
		if (kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: k}, parts...) == p {
			return k
		}
	}
}

// upTo returns 0, 1, …, n-1.
func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// resumesAfterCommitted checks that a consumer of a group starts after what the group
// committed: it starts one with start (whose handler calls record for every record it is
// handed), sends one fresh record per partition, waits until the consumer has them all,
// stops it, and fails if it was handed any other record.
func (e *env) resumesAfterCommitted(t *testing.T, topic string, start func(record func(kafka.Message)) (stop func())) {
	t.Helper()
	var (
		mu    sync.Mutex
		old   []string
		fresh = map[int]bool{}
	)
	stop := start(func(m kafka.Message) {
		mu.Lock()
		defer mu.Unlock()
		if v := string(m.Value); strings.HasPrefix(v, "fresh-") {
			fresh[m.Partition] = true
		} else {
			old = append(old, fmt.Sprintf("%d@%d %q", m.Partition, m.Offset, v))
		}
	})
	n := e.partitions(topic)
	for p := range n {
		e.send(topic, kafka.Message{Key: keyFor(p, n), Value: fmt.Appendf(nil, "fresh-%d", p)})
	}
	waitFor(t, 20*time.Second, "the consumer to reach the fresh records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fresh) == n
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(old) > 0 {
		t.Errorf("consumer handled %d committed records again, e.g. %s; want none", len(old), old[0])
	}
}

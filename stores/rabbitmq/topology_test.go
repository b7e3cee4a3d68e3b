package rabbitmq

import (
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

func TestRetryQueueName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delay time.Duration
		want  string
	}{
		{100 * time.Millisecond, "q.retry.100ms"},
		{time.Second, "q.retry.1s"},
		{1500 * time.Millisecond, "q.retry.1.5s"},
		{30 * time.Second, "q.retry.30s"},
		{time.Minute, "q.retry.1m"},
		{90 * time.Second, "q.retry.1m30s"},
		{time.Hour, "q.retry.1h"},
	}
	for _, tt := range tests {
		if got := RetryQueueName("q", tt.delay); got != tt.want {
			t.Errorf("RetryQueueName(q, %v) = %q, want %q", tt.delay, got, tt.want)
		}
	}
}

func TestDeclareTopologyIsIdempotent(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, nil) // default delays
	if err := Declare(testCtx(t, waitTimeout), url, top); err != nil {
		t.Fatalf("second Declare: %v", err)
	}
	ch := rawChannel(t, url)
	names := []string{q.Name, DeadQueueName(q.Name)}
	for _, d := range DefaultDelays() {
		names = append(names, RetryQueueName(q.Name, d))
	}
	for _, name := range names {
		queueLen(t, ch, name) // fails the test if the queue is missing
	}
}

func TestDeclareRejectsInvalidTopology(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	tests := []struct {
		name string
		top  Topology
	}{
		{"no exchange", Topology{Queues: []Queue{{Name: "q"}}}},
		{"unnamed queue", Topology{Exchange: "x", Queues: []Queue{{}}}},
		{"sub-millisecond delay", Topology{Exchange: "x", Queues: []Queue{{Name: "q", Delays: []time.Duration{time.Nanosecond}}}}},
		{"repeated delay", Topology{Exchange: "x", Queues: []Queue{{Name: "q", Delays: []time.Duration{time.Second, time.Second}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := Declare(testCtx(t, waitTimeout), url, tt.top); err == nil {
				t.Errorf("Declare(%+v) = nil, want an error", tt.top)
			}
		})
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, waitTimeout)
	if err := Ping(ctx, testenv.RabbitURL(t)); err != nil {
		t.Errorf("Ping(shared broker): %v", err)
	}
	// Nothing listens on a port that was free a moment ago.
	closed := "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/"
	if err := Ping(ctx, closed); err == nil {
		t.Errorf("Ping(%s) = nil, want an error", closed)
	}
}

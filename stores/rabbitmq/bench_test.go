package rabbitmq

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// BenchmarkPublish publishes 500 messages per iteration, in one confirmed batch and, as a
// baseline, one message at a time waiting for each confirm.
func BenchmarkPublish(b *testing.B) {
	url := testenv.RabbitURL(b)
	top, q := testTopology(b, url, shortDelays)
	p := newTestPublisher(b, url, top.Exchange)
	ch := rawChannel(b, url)
	const n = 500
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{ID: fmt.Sprintf("order-%d", i), RoutingKey: "order.placed", Body: make([]byte, 256)}
	}
	for _, batch := range []int{1, n} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := testCtx(b, waitTimeout*10)
			for b.Loop() {
				for i := 0; i < n; i += batch {
					if err := p.Publish(ctx, msgs[i:i+batch]...); err != nil {
						b.Fatalf("Publish: %v", err)
					}
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
			if _, err := ch.QueuePurge(q.Name, false); err != nil {
				b.Fatalf("purge: %v", err)
			}
		})
	}
}

// BenchmarkConsume publishes 2,000 messages per iteration in confirmed batches of 100, as the
// relay does, and consumes them with 128 handlers that do nothing, as the payment worker's
// consumer runs. Besides msgs/s it reports broker-us/msg: the CPU the broker's process
// (beam.smp, read from /proc) spent per message published, confirmed, delivered and acked,
// which on a machine shared with the broker is what consuming costs everything else.
func BenchmarkConsume(b *testing.B) {
	url := testenv.RabbitURL(b)
	top, q := testTopology(b, url, shortDelays)
	p := newTestPublisher(b, url, top.Exchange)
	const n, batch = 2000, 100
	handled := make(chan struct{}, n)
	startConsumer(b, ConsumerConfig{URL: url, Queue: q.Name, Prefetch: 256, Concurrency: 128, Delays: shortDelays,
		Handler: func(context.Context, Delivery) error { handled <- struct{}{}; return nil }})
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{ID: fmt.Sprintf("order-%d", i), RoutingKey: "order.placed", Body: make([]byte, 300), Priority: 5}
	}
	ctx := testCtx(b, waitTimeout*10)
	broker := brokerCPU()
	for b.Loop() {
		for i := 0; i < n; i += batch {
			if err := p.Publish(ctx, msgs[i:i+batch]...); err != nil {
				b.Fatalf("Publish: %v", err)
			}
		}
		for range n {
			receive(b, handled, "a handled message")
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
	if used, ok := broker(); ok {
		b.ReportMetric(used.Seconds()*1e6/float64(b.N*n), "broker-us/msg")
	}
}

// brokerCPU starts counting the CPU time of the local broker's process; the returned func
// reports it, or false where it cannot be read (no /proc, a broker elsewhere).
func brokerCPU() func() (time.Duration, bool) {
	read := func() (time.Duration, bool) {
		out, err := exec.Command("pgrep", "-o", "beam.smp").Output()
		if err != nil {
			return 0, false
		}
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(out)) + "/stat")
		if err != nil {
			return 0, false
		}
		// Fields after the command's closing parenthesis; utime and stime are the 12th and
		// 13th of them, in clock ticks (100 a second on Linux).
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return 0, false
		}
		user, err1 := strconv.Atoi(f[11])
		sys, err2 := strconv.Atoi(f[12])
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return time.Duration(user+sys) * 10 * time.Millisecond, true
	}
	start, ok := read()
	return func() (time.Duration, bool) {
		end, ok2 := read()
		return end - start, ok && ok2
	}
}

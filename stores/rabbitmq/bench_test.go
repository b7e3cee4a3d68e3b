package rabbitmq

import (
	"fmt"
	"testing"

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

package rabbitmq

import (
	"context"
	"fmt"
)

// QueueDepths returns the messages ready in each of queues, by a passive declare on one
// short-lived connection: what an operator's metrics scrape asks, every few seconds at most.
// A queue that does not exist yet is left out of the answer.
func QueueDepths(ctx context.Context, url string, queues ...string) (map[string]int, error) {
	conn, err := dial(ctx, url, "flashsale-metrics")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: queue depths: %w", err)
	}
	defer closeConn(conn, closeTimeout)
	depths := make(map[string]int, len(queues))
	for _, q := range queues {
		// A passive declare of a missing queue closes its channel: one channel per queue.
		ch, err := conn.Channel()
		if err != nil {
			return depths, fmt.Errorf("rabbitmq: queue depths: %w", err)
		}
		if st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
			depths[q] = st.Messages
			ch.Close()
		}
		if err := ctx.Err(); err != nil {
			return depths, err
		}
	}
	return depths, nil
}

package kafka

import (
	"context"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
)

// Lag returns, for each partition of topic, how many records the consumer group has yet to
// commit: the partition's end offset less the group's committed offset (or less the
// partition's first offset, where the group starts, before its first commit). opts are the
// clients' TLS and SASL settings.
func Lag(ctx context.Context, brokers []string, topic, group string, opts ...Option) (map[int]int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, adminTimeout)
		defer cancel()
	}
	// A transport of its own, closed on return: a scrape every few seconds leaves no
	// connection behind.
	transport, err := buildOptions(opts).transport()
	if err != nil {
		return nil, fmt.Errorf("kafka: lag of %s on %s: %w", group, topic, err)
	}
	defer transport.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: adminTimeout, Transport: transport}
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka: lag of %s on %s: metadata: %w", group, topic, err)
	}
	var partitions []int
	for _, t := range meta.Topics {
		if t.Name == topic && t.Error == nil {
			for _, p := range t.Partitions {
				partitions = append(partitions, p.ID)
			}
		}
	}
	if len(partitions) == 0 {
		return nil, fmt.Errorf("kafka: lag of %s on %s: no such topic", group, topic)
	}
	asks := make([]kafkago.OffsetRequest, 0, 2*len(partitions))
	for _, p := range partitions {
		asks = append(asks, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	ends, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: asks}})
	if err != nil {
		return nil, fmt.Errorf("kafka: lag of %s on %s: list offsets: %w", group, topic, err)
	}
	committed, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err == nil {
		err = committed.Error
	}
	at := map[int]int64{}
	switch {
	case errors.Is(err, kafkago.GroupIdNotFound):
		// A group that has never committed: it starts at each partition's first offset.
	case err != nil:
		return nil, fmt.Errorf("kafka: lag of %s on %s: committed offsets: %w", group, topic, err)
	default:
		for _, p := range committed.Topics[topic] {
			if p.Error == nil {
				at[p.Partition] = p.CommittedOffset
			}
		}
	}
	lag := make(map[int]int64, len(partitions))
	for _, p := range ends.Topics[topic] {
		if p.Error != nil {
			continue
		}
		from, ok := at[p.Partition]
		if !ok || from < 0 {
			from = p.FirstOffset
		}
		lag[p.Partition] = max(0, p.LastOffset-from)
	}
	return lag, nil
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// adminTimeout bounds Ping and CreateTopic when ctx has no deadline, so that a broker which
// accepts connections but never answers cannot hang a readiness check.
const adminTimeout = 10 * time.Second

// clientID names this application's connections in broker logs and group descriptions.
const clientID = "flashsale"

// Ping reports whether any of brokers answers a metadata request, which is enough for the
// clients here to find the rest of the cluster. It is meant for readiness checks.
func Ping(ctx context.Context, brokers []string, opts ...Option) error {
	conn, release, err := dialAny(ctx, brokers, buildOptions(opts))
	if err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	defer release()
	// A metadata round trip, not just a TCP connect: a broker that is still starting
	// accepts connections before it serves requests.
	if _, err := conn.Brokers(); err != nil {
		return fmt.Errorf("kafka: ping %s: %w", conn.RemoteAddr(), orCtxErr(ctx, err))
	}
	return nil
}

// CreateTopic creates topic with the given number of partitions, replicated to up to three
// brokers. It is idempotent, so every process that uses the topic calls it at startup: a
// topic that already exists keeps its records, and gets partitions added when it has fewer
// than asked (a broker's auto-creation gives its own default); one with more keeps them,
// since Kafka never removes partitions.
func CreateTopic(ctx context.Context, brokers []string, topic string, partitions int, opts ...Option) error {
	o := buildOptions(opts)
	if partitions < 1 {
		return fmt.Errorf("kafka: create topic %s: %d partitions", topic, partitions)
	}
	conn, release, err := dialAny(ctx, brokers, o)
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	// Only the controller creates topics; any broker says which one that is.
	controller, err := conn.Controller()
	var all []kafkago.Broker
	if err == nil {
		all, err = conn.Brokers()
	}
	release()
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: find controller: %w", topic, orCtxErr(ctx, err))
	}
	addr := net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port))
	conn, release, err = dial(ctx, addr, o)
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	defer release()
	// kafka-go's Conn speaks CreateTopics v0-v2, which has no "broker default" replication
	// factor, so pick one that a one-broker development cluster can satisfy.
	err = conn.CreateTopics(kafkago.TopicConfig{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: min(3, len(all)),
	})
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", topic, orCtxErr(ctx, err))
	}
	have, err := conn.ReadPartitions(topic)
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: read its partitions: %w", topic, orCtxErr(ctx, err))
	}
	if len(have) >= partitions {
		return nil
	}
	return addPartitions(ctx, addr, topic, partitions, o)
}

// addPartitions grows topic to partitions through the controller at addr. Records already
// written stay where they are; new ones spread over every partition.
func addPartitions(ctx context.Context, addr, topic string, partitions int, o options) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, adminTimeout)
		defer cancel()
	}
	transport, err := o.transport()
	if err != nil {
		return fmt.Errorf("kafka: grow topic %s: %w", topic, err)
	}
	defer transport.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: transport}
	res, err := client.CreatePartitions(ctx, &kafkago.CreatePartitionsRequest{
		Topics: []kafkago.TopicPartitionsConfig{{Name: topic, Count: int32(partitions)}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("kafka: grow topic %s to %d partitions: %w", topic, partitions, err)
	}
	return nil
}

// dialAny connects to the first of brokers that accepts a connection.
func dialAny(ctx context.Context, brokers []string, o options) (*kafkago.Conn, func(), error) {
	if len(brokers) == 0 {
		return nil, nil, errors.New("no broker addresses")
	}
	var errs []error
	for _, b := range brokers {
		conn, release, err := dial(ctx, b, o)
		if err == nil {
			return conn, release, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, errors.Join(errs...)
}

// dial connects to addr and ties the connection to ctx: kafka-go's Conn takes deadlines, not
// contexts, so ctx's deadline (or adminTimeout) becomes the connection's, and ending ctx
// closes it. release closes the connection and waits for that watcher.
func dial(ctx context.Context, addr string, o options) (conn *kafkago.Conn, release func(), err error) {
	d, err := o.dialer()
	if err != nil {
		return nil, nil, err
	}
	conn, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(adminTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		close(closed)
	})
	release = func() {
		if !stop() {
			<-closed
		}
		conn.Close()
	}
	return conn, release, nil
}

// orCtxErr prefers ctx's error to err when ctx has ended, since then err is only the
// "use of closed connection" that ending ctx caused.
func orCtxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

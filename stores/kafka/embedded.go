package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// embeddedMinSessionTimeout is the shortest consumer-group session the embedded broker
// accepts. kfake, like Kafka, defaults to 6s; a development broker lets tests and local runs
// choose faster failure detection.
const embeddedMinSessionTimeout = 500 * time.Millisecond

// Embedded is an in-memory, single-broker Kafka-protocol server running in this process, so
// that `make run` and tests have Kafka without a server. It keeps nothing on disk: records,
// topics and committed offsets vanish on Close. Topics are not created on first use; create
// them with CreateTopic as against a real cluster.
type Embedded struct {
	cluster *kfake.Cluster
	brokers []string
	log     *slog.Logger
	once    sync.Once
}

// StartEmbedded starts an embedded broker on a free port of 127.0.0.1 and returns once it
// answers requests, or with an error if it does not before ctx ends.
func StartEmbedded(ctx context.Context, log *slog.Logger) (*Embedded, error) {
	return StartEmbeddedWith(ctx, log, EmbeddedOptions{})
}

// EmbeddedOptions place an embedded broker; the zero value is StartEmbedded's broker.
type EmbeddedOptions struct {
	// Port is the port to listen on; 0 picks a free one.
	Port int
	// DataDir, when set, keeps the broker's topics, records and committed offsets there, and
	// a broker started again on the same directory finds them: a restart, as a real broker's
	// would be, rather than a new, empty broker.
	DataDir string
}

// StartEmbeddedWith starts an embedded broker as StartEmbedded does, placed by opts.
func StartEmbeddedWith(ctx context.Context, log *slog.Logger, opts EmbeddedOptions) (*Embedded, error) {
	kopts := []kfake.Opt{
		// One broker is one port to hand around; kafka-go behaves the same against one as
		// against several, which would only spread partition leaders.
		kfake.NumBrokers(1),
		kfake.ClusterID("flashsale-embedded"),
		kfake.GroupMinSessionTimeout(embeddedMinSessionTimeout),
		kfake.WithLogger(kfakeLogger{log.With("component", "kfake")}),
	}
	if opts.Port != 0 {
		kopts = append(kopts, kfake.Ports(opts.Port))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	e := &Embedded{cluster: c, brokers: c.ListenAddrs(), log: log}
	if err := Ping(ctx, e.brokers); err != nil {
		c.Close()
		return nil, fmt.Errorf("kafka: embedded broker does not answer: %w", err)
	}
	log.Info("embedded kafka broker started", "brokers", e.brokers)
	return e, nil
}

// Brokers returns the broker addresses ("127.0.0.1:port") to hand to producers and consumers.
func (e *Embedded) Brokers() []string { return append([]string(nil), e.brokers...) }

// Close stops the broker and drops its data. Clients still connected see their connections
// close. Calling Close again does nothing.
func (e *Embedded) Close() {
	e.once.Do(func() {
		e.cluster.Close()
		e.log.Info("embedded kafka broker stopped", "brokers", e.brokers)
	})
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Defaults of ConsumerConfig, and the reader settings Consume does not expose.
const (
	defaultPoisonAttempts = 3
	defaultRetryMin       = 100 * time.Millisecond
	defaultRetryMax       = 30 * time.Second

	// Kafka, and kfake, refuse sessions under 6s unless told otherwise (the embedded broker
	// is); 10s notices a crashed consumer quickly without evicting one for a slow GC.
	defaultSessionTimeout = 10 * time.Second
	// Members learn that a rebalance started from a heartbeat's answer, so the interval is
	// also how long a new member waits for the others to rejoin.
	defaultHeartbeatInterval = time.Second
	// How long the coordinator waits for every member to rejoin. A kafka-go member rejoins
	// without waiting for its handler, within a heartbeat and a fetch, so 10s is ample.
	defaultRebalanceTimeout = 10 * time.Second

	// fetchMaxWait is how long a fetch waits at the broker for new records. kafka-go cannot
	// interrupt a fetch in flight, so it also bounds how long a rebalance or Consume's
	// return waits; its default is 10s. New records still arrive at once.
	fetchMaxWait = 500 * time.Millisecond
	// joinGroupBackoff is the pause after a failed join, against kafka-go's 5s default.
	joinGroupBackoff = time.Second
	// commitTimeout bounds the commit after a handled record. The commit outlives ctx,
	// since dropping it would only make the record be handled again.
	commitTimeout = 10 * time.Second
)

// ConsumerConfig says which records Consume reads and what it does with them. Brokers,
// Topic, GroupID and Handler are required; the rest have defaults.
type ConsumerConfig struct {
	Brokers []string
	Topic   string
	// GroupID names the consumer group. Consumers of one group share the topic's partitions
	// and its committed offsets; a new group starts at the oldest record.
	GroupID string

	// Handler processes one record. Consume calls it from one goroutine, one record at a
	// time, in each partition's order, and commits a record only after Handler returned nil
	// for it. A record can be handled again after a failure, a restart or a rebalance, so
	// Handler must be idempotent. See ErrPoison for records that can never succeed.
	Handler func(ctx context.Context, m Message) error

	// Log receives Consume's logs; nil means slog.Default().
	Log *slog.Logger

	// PoisonAttempts is how many times a record must fail with ErrPoison before it is
	// skipped (default 3). A few tries cost little and guard against a handler that calls
	// a passing failure permanent.
	PoisonAttempts int
	// RetryMin and RetryMax bound the pause between attempts at a failing record: it starts
	// at RetryMin and doubles up to RetryMax (defaults 100ms and 30s).
	RetryMin, RetryMax time.Duration

	// SessionTimeout, HeartbeatInterval and RebalanceTimeout tune the group protocol
	// (defaults 10s, 1s and 10s). A consumer that stops cleanly leaves the group at once;
	// SessionTimeout is how long a crashed one holds its partitions.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
}

func (cfg *ConsumerConfig) check() error {
	switch {
	case len(cfg.Brokers) == 0:
		return errors.New("no broker addresses")
	case cfg.Topic == "":
		return errors.New("no topic")
	case cfg.GroupID == "":
		return errors.New("no group id")
	case cfg.Handler == nil:
		return errors.New("no handler")
	}
	return nil
}

func (cfg *ConsumerConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PoisonAttempts <= 0 {
		cfg.PoisonAttempts = defaultPoisonAttempts
	}
	def(&cfg.RetryMin, defaultRetryMin)
	def(&cfg.RetryMax, defaultRetryMax)
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	def(&cfg.SessionTimeout, defaultSessionTimeout)
	def(&cfg.HeartbeatInterval, defaultHeartbeatInterval)
	def(&cfg.RebalanceTimeout, defaultRebalanceTimeout)
}

// Consume joins cfg.GroupID and hands every record of cfg.Topic to cfg.Handler, at least
// once each, until ctx ends; then it leaves the group and returns nil. It returns an error
// only for an invalid cfg: broker failures are logged and retried.
//
// A record is committed only after Handler succeeded, so a consumer stopped before that
// leaves the record to the next consumer of the group. A failing record is retried with
// backoff, holding back the records behind it, until it succeeds, until ctx ends, or (see
// ErrPoison) until it is found to be poison, when it is logged and skipped.
func Consume(ctx context.Context, cfg ConsumerConfig) error {
	if err := cfg.check(); err != nil {
		return fmt.Errorf("kafka: consume: %w", err)
	}
	cfg.setDefaults()
	log := cfg.Log.With("topic", cfg.Topic, "group", cfg.GroupID)
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           cfg.Brokers,
		Topic:             cfg.Topic,
		GroupID:           cfg.GroupID,
		Dialer:            &kafkago.Dialer{ClientID: clientID, Timeout: adminTimeout, DualStack: true},
		StartOffset:       kafkago.FirstOffset,
		MaxWait:           fetchMaxWait,
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  joinGroupBackoff,
		// CommitInterval 0 makes CommitMessages wait for the broker's answer, which is what
		// lets a handled record count as committed.
		CommitInterval: 0,
		ErrorLogger:    kafkaLogger(log, slog.LevelWarn),
	})
	log.Info("consumer started")
	c := &consumer{cfg: cfg, r: r, log: log}
	c.run(ctx)
	// Close waits for the reader's goroutines and leaves the group, so that the partitions
	// move to the other members now rather than after SessionTimeout.
	if err := r.Close(); err != nil {
		log.Warn("close consumer", "err", err)
	}
	log.Info("consumer stopped")
	return nil
}

type consumer struct {
	cfg ConsumerConfig
	r   *kafkago.Reader
	log *slog.Logger
}

// run fetches, handles and commits records until ctx ends.
func (c *consumer) run(ctx context.Context) {
	failures := 0
	for {
		km, err := c.r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// kafka-go keeps rejoining and refetching by itself; the pause only keeps a
			// broker outage from filling the log.
			failures++
			d := backoff(failures, c.cfg.RetryMin, c.cfg.RetryMax)
			c.log.Warn("fetch failed", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		if !c.handle(ctx, km) {
			return
		}
		c.commit(ctx, km)
	}
}

// handle calls the handler until it succeeds or the record proves poison, and reports
// whether the record may be committed: false means ctx ended first.
func (c *consumer) handle(ctx context.Context, km kafkago.Message) bool {
	m := fromKafka(km)
	log := c.log.With("partition", km.Partition, "offset", km.Offset)
	poisoned := 0
	for attempt := 1; ; attempt++ {
		err := c.cfg.Handler(ctx, m)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			// The handler most likely failed because ctx ended: leave the record to the
			// group's next consumer.
			log.Info("handler stopped; record left uncommitted", "err", err)
			return false
		}
		if errors.Is(err, ErrPoison) {
			poisoned++
			if poisoned >= c.cfg.PoisonAttempts {
				log.Error("skipping poison record", "key", string(km.Key), "attempts", attempt, "err", err)
				return true
			}
		}
		d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
		log.Warn("handler failed; retrying", "attempt", attempt, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// commit commits km's offset. A failed commit is only logged: the record will be handled
// again, which at-least-once allows, and the next commit on its partition covers it.
func (c *consumer) commit(ctx context.Context, km kafkago.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := c.r.CommitMessages(ctx, km); err != nil {
		c.log.Warn("commit failed; record will be handled again",
			"partition", km.Partition, "offset", km.Offset, "err", err)
	}
}

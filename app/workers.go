package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/perf/burst"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/analytics"
	"github.com/flashsale/flashsale/workers/notifications"
	"github.com/flashsale/flashsale/workers/payments"
	"github.com/flashsale/flashsale/workers/relay"
	"github.com/flashsale/flashsale/workers/sweeper"
)

// Topology declares the order-events exchange with a queue for each RabbitMQ worker.
func (c Config) Topology() rabbitmq.Topology {
	return rabbitmq.Topology{
		Exchange: c.OrdersExchange(),
		Queues: []rabbitmq.Queue{
			// Payments charges placed orders and settles (refunds) cancelled and expired ones.
			{Name: c.PaymentsQueue(), RoutingKeys: []string{flashsale.EventOrderPlaced, flashsale.EventOrderCancelled,
				flashsale.EventOrderExpired, flashsale.EventOrderSettlementDue}, Delays: c.RetryDelays},
			{Name: c.NotificationsQueue(), RoutingKeys: []string{"order.#"}, Delays: c.RetryDelays},
		},
	}
}

// EventsTopicPartitions is the order-events topic's partition count: the most analytics
// workers that can share the work.
const EventsTopicPartitions = 8

// WorkerDrainTimeout is how long a stopping worker lets the deliveries in hand finish: under
// ShutdownTimeout, so that it acks them before the process is told to hurry.
const WorkerDrainTimeout = 10 * time.Second

// PrepareBrokers declares the RabbitMQ topology and creates the Kafka topic.
func PrepareBrokers(ctx context.Context, cfg Config, kafkaBrokers []string) error {
	if err := rabbitmq.Declare(ctx, cfg.RabbitMQURL, cfg.Topology()); err != nil {
		return fmt.Errorf("declare RabbitMQ topology: %w", err)
	}
	kafkaOpts, err := cfg.Kafka.Options()
	if err != nil {
		return err
	}
	if err := kafka.CreateTopic(ctx, kafkaBrokers, cfg.EventsTopic(), EventsTopicPartitions, kafkaOpts...); err != nil {
		return fmt.Errorf("create Kafka topic: %w", err)
	}
	return nil
}

// declareBackoffMax bounds the pause between attempts at declaring a broker's topology.
const declareBackoffMax = 5 * time.Second

// declareUntilDone calls declare until it succeeds, with a growing pause between attempts,
// and reports false if ctx ended first. A process that starts before its broker does waits
// for it here, not ready, rather than exiting.
func declareUntilDone(ctx context.Context, log *slog.Logger, what string, declare func(context.Context) error) bool {
	pause := 100 * time.Millisecond
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := declare(attemptCtx)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("declare "+what+" failed; retrying", "err", err, "after", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return false
		}
		pause = min(2*pause, declareBackoffMax)
	}
}

// RunRelays sends the outbox to RabbitMQ (with publisher confirms) and to Kafka until ctx
// ends. Each destination has its own loop, so an outage of one never holds back the other.
// While the API in this process serves a burst (d.Burst), the events for payments wait while
// orders are being written and then go at a pace, and those for analytics wait for the burst
// to pass; both waits are bounded.
func RunRelays(ctx context.Context, d *Deps, kafkaBrokers []string) {
	if err := registerCollector(d.Registry, newOutboxCollector(d.DB)); err != nil {
		d.Log.Error("register the outbox metrics", "err", err)
	}
	if !declareUntilDone(ctx, d.Log, "the brokers' topology", func(ctx context.Context) error {
		return PrepareBrokers(ctx, d.Config, kafkaBrokers)
	}) {
		return
	}
	pub := rabbitmq.NewPublisher(d.Config.RabbitMQURL, d.Config.OrdersExchange(), d.Log)
	defer pub.Close()
	d.brokers.add("relay", pub.Check)
	kafkaOpts, err := d.Config.Kafka.Options()
	if err != nil { // ConfigFromEnv refuses these settings; a hand-built Config may not
		d.Log.Error("relay not started", "err", err)
		return
	}
	producer := kafka.NewProducer(kafkaBrokers, d.Config.EventsTopic(), d.Log, kafkaOpts...)
	defer producer.Close()

	toRabbit := relay.SinkFunc(func(ctx context.Context, rows []flashsale.OutboxEvent) (err error) {
		parents, end := d.relaySpans(ctx, "rabbitmq", rows)
		defer func() { end(err) }()
		return pub.Publish(ctx, rabbitmq.OutboxMessages(rows, parents)...)
	})
	toKafka := relay.SinkFunc(func(ctx context.Context, rows []flashsale.OutboxEvent) (err error) {
		parents, end := d.relaySpans(ctx, "kafka", rows)
		defer func() { end(err) }()
		return producer.Send(ctx, kafka.OutboxMessages(rows, parents)...)
	})
	outbox := postgres.NewOutbox(d.DB)
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.New(outbox, flashsale.ToKafka, toKafka, relay.Config{
			Hold: d.Burst.WaitWhileBusy, ClaimTimeout: d.Config.RelayClaimTimeout,
		}, d.Log).Run(ctx)
	}()
	relay.New(outbox, flashsale.ToRabbitMQ, toRabbit, relay.Config{
		Hold: d.Burst.WaitWhileSelling, Paced: d.Burst.Busy, ClaimTimeout: d.Config.RelayClaimTimeout,
	}, d.Log).Run(ctx)
	<-done
}

// RunSweeper expires stale orders and reconciles stock pools until ctx ends.
func RunSweeper(ctx context.Context, d *Deps, cfg sweeper.Config) {
	sweeper.Run(ctx, d.Checkout, cfg, d.Log.With("worker", "sweeper"))
}

// eventHandler decodes an order event from a RabbitMQ delivery for a worker, in a span of
// the trace the message carries when tracing is on.
func (d *Deps) eventHandler(worker string, handle func(context.Context, flashsale.OrderEvent) error) func(context.Context, rabbitmq.Delivery) error {
	return func(ctx context.Context, m rabbitmq.Delivery) (err error) {
		if d.Tracer != nil {
			parent, _ := m.Headers[rabbitmq.HeaderTraceParent].(string)
			var end func(error)
			ctx, end = d.consumerSpan(ctx, worker, m.RoutingKey, parent)
			defer func() { end(err) }()
		}
		var e flashsale.OrderEvent
		if err := json.Unmarshal(m.Body, &e); err != nil {
			// A message that cannot be read never will be: let it go to the dead letters.
			return fmt.Errorf("decode order event %s: %w", m.MessageID, err)
		}
		return handle(ctx, e)
	}
}

// waitingWhileBusy makes handle wait while the API in this process serves a burst, for at
// most the detector's bound after the event happened (burst.Detector.WaitWhileBusy).
func waitingWhileBusy(b *burst.Detector, handle func(context.Context, flashsale.OrderEvent) error) func(context.Context, flashsale.OrderEvent) error {
	return func(ctx context.Context, e flashsale.OrderEvent) error {
		b.WaitWhileBusy(ctx, e.At)
		return handle(ctx, e)
	}
}

// PaymentsConfig sizes the payment worker.
type PaymentsConfig struct {
	Concurrency int // charges in flight; default DefaultPaymentsConcurrency
}

// DefaultPaymentsConcurrency is a payment worker's charges in flight. The gateway is slow,
// not busy: its charges spend their time waiting, so many in flight pay a sale's orders
// sooner without loading the cores.
const DefaultPaymentsConcurrency = 128

// RunPayments charges placed orders and refunds ended ones until ctx ends. Its refunds are
// counted on d.Registry (flashsale_refunds_total).
func RunPayments(ctx context.Context, d *Deps, pc PaymentsConfig) error {
	if pc.Concurrency == 0 {
		pc.Concurrency = DefaultPaymentsConcurrency
	}
	gw := payments.NewGateway(postgres.NewChargeLedger(d.DB), payments.GatewayConfig{
		Latency: d.Config.PaymentLatency, FailureRate: d.Config.PaymentFailureRate, TimeoutRate: d.Config.PaymentTimeoutRate,
	})
	refunds, err := registerCounter(d.Registry, payments.NewRefundsCounter(nil))
	if err != nil {
		return fmt.Errorf("register the refunds counter: %w", err)
	}
	charges, err := registerCounter(d.Registry, payments.NewPaymentsCounter(nil))
	if err != nil {
		return fmt.Errorf("register the payments counter: %w", err)
	}
	w := payments.NewWorker(gw, d.Raw.Orders, d.Checkout, refunds, d.Log.With("worker", "payments")).CountPayments(charges)
	forwards, err := d.queueMetrics("payments", d.Config.PaymentsQueue())
	if err != nil {
		return err
	}
	// The whole topology, not only this worker's queue: whichever process starts first, no
	// event the relay publishes finds a consumer's queue missing.
	topology := d.Config.Topology()
	link := rabbitmq.NewLink()
	d.brokers.add("payments", link.Check)
	return rabbitmq.Consume(ctx, rabbitmq.ConsumerConfig{
		URL: d.Config.RabbitMQURL, Queue: d.Config.PaymentsQueue(), Link: link,
		Topology: &topology, DrainTimeout: WorkerDrainTimeout,
		Prefetch: 2 * pc.Concurrency, Concurrency: pc.Concurrency,
		Delays: d.Config.RetryDelays, MaxAttempts: d.Config.MaxAttempts,
		Handler: d.eventHandler("payments", w.Handle), Log: d.Log.With("worker", "payments"), Forwarded: forwards,
	})
}

// RunNotifications notifies buyers until ctx ends.
func RunNotifications(ctx context.Context, d *Deps) error {
	if err := d.Config.CheckWebhook(); err != nil {
		return fmt.Errorf("APP_ENV=production: %w", err)
	}
	var sink notifications.Sink = notifications.LogSink{Log: d.Log.With("sink", "log")}
	if d.Config.NotifyWebhookURL != "" {
		sink = notifications.WebhookSink{URL: d.Config.NotifyWebhookURL, Secret: []byte(d.Config.NotifyWebhookSecret)}
	}
	w := notifications.NewWorker(postgres.NewNotificationStore(d.DB), sink, d.Log.With("worker", "notifications"))
	forwards, err := d.queueMetrics("notifications", d.Config.NotificationsQueue())
	if err != nil {
		return err
	}
	topology := d.Config.Topology()
	link := rabbitmq.NewLink()
	d.brokers.add("notifications", link.Check)
	return rabbitmq.Consume(ctx, rabbitmq.ConsumerConfig{
		URL: d.Config.RabbitMQURL, Queue: d.Config.NotificationsQueue(), Link: link, Prefetch: 32, Concurrency: 8,
		Topology: &topology, DrainTimeout: WorkerDrainTimeout,
		Delays: d.Config.RetryDelays, MaxAttempts: d.Config.MaxAttempts,
		Handler: d.eventHandler("notifications", waitingWhileBusy(d.Burst, w.Handle)), Log: d.Log.With("worker", "notifications"),
		Forwarded: forwards,
	})
}

// RunAnalytics counts sale figures from Kafka until ctx ends. It takes the records in
// batches, counted with one transaction per shard, since one transaction per event is what
// the database's CPU would go on in a flash sale.
func RunAnalytics(ctx context.Context, d *Deps, kafkaBrokers []string) error {
	w := analytics.NewWorker(postgres.NewStatsStore(d.DB))
	log := d.Log.With("worker", "analytics")
	kafkaOpts, err := d.Config.Kafka.Options()
	if err != nil {
		return err
	}
	// Not ready until the topic exists with its partitions: a consumer group reading a topic
	// that is missing would let a broker's auto-creation choose the partition count.
	var declared atomic.Bool
	d.brokers.add("analytics", func(ctx context.Context) error {
		if !declared.Load() {
			return errors.New("kafka: topic not declared yet")
		}
		return kafka.Ping(ctx, kafkaBrokers, kafkaOpts...)
	})
	if err := registerCollector(d.Registry, newLagCollector(kafkaBrokers, d.Config.EventsTopic(), d.Config.AnalyticsGroup(), kafkaOpts)); err != nil {
		return fmt.Errorf("register the consumer lag metric: %w", err)
	}
	if !declareUntilDone(ctx, log, "Kafka topic", func(ctx context.Context) error {
		return kafka.CreateTopic(ctx, kafkaBrokers, d.Config.EventsTopic(), EventsTopicPartitions, kafkaOpts...)
	}) {
		return nil
	}
	declared.Store(true)
	return kafka.Consume(ctx, kafka.ConsumerConfig{
		Brokers: kafkaBrokers, Topic: d.Config.EventsTopic(), GroupID: d.Config.AnalyticsGroup(),
		Options: kafkaOpts, Log: log, DrainTimeout: WorkerDrainTimeout,
		BatchHandler: func(ctx context.Context, msgs []kafka.Message) (err error) {
			if d.Tracer != nil {
				parents := make([]string, len(msgs))
				for i, m := range msgs {
					parents[i] = m.Headers[kafka.HeaderTraceParent]
				}
				var end func(error)
				ctx, end = d.batchSpan(ctx, "analytics", "count", parents)
				defer func() { end(err) }()
			}
			values := make([][]byte, len(msgs))
			for i, m := range msgs {
				values[i] = m.Value
			}
			events := analytics.Decode(values, func(i int, err error) {
				log.Error("skipping undecodable order event", "partition", msgs[i].Partition, "offset", msgs[i].Offset, "err", err)
			})
			if len(events) > 0 {
				d.Burst.WaitWhileBusy(ctx, oldest(events)) // counts can wait for a burst to pass
			}
			err = w.HandleBatch(ctx, events)
			if flashsale.ErrorCode(err) == flashsale.EINVALID {
				// An event the store refuses (an id that is no UUID) never will be counted:
				// as poison, the batch is retried one record at a time and that one skipped.
				return fmt.Errorf("%w: %v", kafka.ErrPoison, err)
			}
			return err
		},
	})
}

// oldest returns the time of the earliest event.
func oldest(events []flashsale.OrderEvent) time.Time {
	t := events[0].At
	for _, e := range events[1:] {
		if e.At.Before(t) {
			t = e.At
		}
	}
	return t
}

// ServeOps serves a worker's /healthz, /readyz and /metrics on addr until ctx ends. The
// process is ready while the broker connection of every worker running in it is up (the
// "brokers" status), besides PostgreSQL and Redis as for the API.
func ServeOps(ctx context.Context, addr string, d *Deps, extra map[string]func(context.Context) error) error {
	all := d.checks()
	all["brokers"] = d.brokers.check
	for k, v := range extra {
		all[k] = v
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	d.Log.Info("ops endpoints listening", "addr", ln.Addr().String())
	srv := &http.Server{Handler: graph.OpsMux(checks(all), d.Registry), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// registerCounter registers c on reg, or returns the counter of the same name registered
// before by another worker of the same kind in this process.
func registerCounter(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return nil, err
		}
		return already.ExistingCollector.(*prometheus.CounterVec), nil
	}
	return c, nil
}

// queueMetrics registers the depth of a RabbitMQ worker's queues and the counters of its
// retries and dead letters, and returns what counts them for rabbitmq.ConsumerConfig.
func (d *Deps) queueMetrics(worker, queue string) (func(dead bool), error) {
	if err := registerCollector(d.Registry, newQueueCollector(d.Config.RabbitMQURL, worker, queue)); err != nil {
		return nil, fmt.Errorf("register the queue depth metric: %w", err)
	}
	forwards, err := newQueueForwards(d.Registry)
	if err != nil {
		return nil, fmt.Errorf("register the retry metrics: %w", err)
	}
	return forwards.counting(queue), nil
}

package app

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
)

// scrapeTimeout bounds what a /metrics scrape asks the databases and brokers: a scrape that
// would wait longer leaves those figures out and says so in flashsale_metrics_source_up.
const scrapeTimeout = 3 * time.Second

// registerBuildInfo exposes the Go runtime's go_build_info and flashsale_build_info, whose
// labels name the build every process runs: a rollout shows as two versions side by side.
func registerBuildInfo(reg prometheus.Registerer) {
	version, revision := "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "flashsale_build_info",
		Help:        "Always 1; the labels name the build this process runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(collectors.NewBuildInfoCollector(), build)
}

// sourceUp returns the desc of flashsale_metrics_source_up for one source: whether the last
// scrape could read the figures a collector asks a database or a broker for. Each collector
// has its own source value, so that several can be registered in one process.
func sourceUp(source string) *prometheus.Desc {
	return prometheus.NewDesc("flashsale_metrics_source_up",
		"1 if the last scrape read the figures of this source (outbox, rabbitmq:<worker>, kafka:<group>), 0 if it could not.",
		nil, prometheus.Labels{"source": source})
}

func upMetric(desc *prometheus.Desc, err error) prometheus.Metric {
	v := 1.0
	if err != nil {
		v = 0
	}
	return prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
}

// outboxCollector reads, at each scrape, every shard's events not yet sent to each broker
// and how long the oldest has waited: a backlog that grows, or an age past seconds, is a
// relay or a broker that is not keeping up.
type outboxCollector struct {
	outbox  *postgres.Outbox
	shards  int
	backlog *prometheus.Desc
	age     *prometheus.Desc
	up      *prometheus.Desc
}

func newOutboxCollector(db *postgres.DB) *outboxCollector {
	labels := []string{"shard", "destination"}
	return &outboxCollector{
		outbox: postgres.NewOutbox(db),
		shards: db.Shards(),
		backlog: prometheus.NewDesc("flashsale_outbox_backlog",
			"Outbox events not yet sent, by shard and destination (rabbitmq, kafka).", labels, nil),
		age: prometheus.NewDesc("flashsale_outbox_oldest_age_seconds",
			"How long the oldest outbox event not yet sent has waited, by shard and destination; 0 when none waits.", labels, nil),
		up: sourceUp("outbox"),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.age
	ch <- c.up
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var errs error
	for shard := range c.shards {
		for dest, name := range map[flashsale.OutboxDestination]string{flashsale.ToRabbitMQ: "rabbitmq", flashsale.ToKafka: "kafka"} {
			st, err := c.outbox.Stats(ctx, shard, dest)
			if err != nil {
				errs = errors.Join(errs, err)
				continue
			}
			s := strconv.Itoa(shard)
			ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(st.Unsent), s, name)
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, st.Oldest.Seconds(), s, name)
		}
	}
	ch <- upMetric(c.up, errs)
}

// queueCollector reads, at each scrape, the messages waiting in a worker's queue and in its
// dead-letter queue.
type queueCollector struct {
	url    string
	queues []string
	depth  *prometheus.Desc
	up     *prometheus.Desc
}

func newQueueCollector(url, worker, queue string) *queueCollector {
	return &queueCollector{
		url:    url,
		queues: []string{queue, rabbitmq.DeadQueueName(queue)},
		depth: prometheus.NewDesc("flashsale_queue_depth",
			"Messages ready in a worker's RabbitMQ queue and in its dead-letter queue.",
			[]string{"queue"}, prometheus.Labels{"worker": worker}),
		up: sourceUp("rabbitmq:" + worker),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.up
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	depths, err := rabbitmq.QueueDepths(ctx, c.url, c.queues...)
	for q, n := range depths {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), q)
	}
	ch <- upMetric(c.up, err)
}

// lagCollector reads, at each scrape, how far the analytics consumer group is behind the end
// of each partition of the events topic.
type lagCollector struct {
	brokers      []string
	opts         []kafka.Option
	topic, group string
	lag          *prometheus.Desc
	up           *prometheus.Desc
}

func newLagCollector(brokers []string, topic, group string, opts []kafka.Option) *lagCollector {
	return &lagCollector{
		brokers: brokers, opts: opts, topic: topic, group: group,
		lag: prometheus.NewDesc("flashsale_kafka_consumer_lag",
			"Records of a Kafka partition the consumer group has not committed yet.",
			[]string{"partition"}, prometheus.Labels{"topic": topic, "group": group}),
		up: sourceUp("kafka:" + group),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.up
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	lag, err := kafka.Lag(ctx, c.brokers, c.topic, c.group, c.opts...)
	ch <- upMetric(c.up, err)
	for p, n := range lag {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(n), strconv.Itoa(p))
	}
}

// queueForwards are the counters of a RabbitMQ worker's failed messages: retried later, or
// parked in the dead-letter queue after the last attempt.
type queueForwards struct{ retries, deadLetters *prometheus.CounterVec }

func newQueueForwards(reg prometheus.Registerer) (queueForwards, error) {
	retries, err := registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_queue_retries_total",
		Help: "Messages whose handler failed and that were sent to a delay queue to be tried again, by queue.",
	}, []string{"queue"}))
	if err != nil {
		return queueForwards{}, err
	}
	dead, err := registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_queue_dead_letters_total",
		Help: "Messages parked in the dead-letter queue after their last attempt failed, by queue.",
	}, []string{"queue"}))
	if err != nil {
		return queueForwards{}, err
	}
	return queueForwards{retries: retries, deadLetters: dead}, nil
}

// counting returns the rabbitmq.ConsumerConfig.Forwarded of queue, every series of which is
// on /metrics from the start.
func (f queueForwards) counting(queue string) func(dead bool) {
	retried, parked := f.retries.WithLabelValues(queue), f.deadLetters.WithLabelValues(queue)
	return func(dead bool) {
		if dead {
			parked.Inc()
		} else {
			retried.Inc()
		}
	}
}

// registerCollector registers c on reg; one registered before by another worker of the same
// kind in this process is kept.
func registerCollector(reg prometheus.Registerer, c prometheus.Collector) error {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

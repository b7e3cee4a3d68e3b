// Package app is the startup code every binary shares: settings from the environment,
// connecting to the shards and the brokers, preparing databases, and assembling the API and
// the workers. Binaries under cmd/ stay a few lines each; end-to-end tests start the same
// assemblies on port 0.
package app

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flashsale/flashsale/ratelimit"
)

// Config holds every setting. Each has a default that works with `make run`.
type Config struct {
	HTTPAddr       string
	DatabaseShards []string
	// DatabasePoolSize is the connections per shard per process (DATABASE_POOL_SIZE,
	// default 16). It is above pgx's default of a few per core, which would queue a flash
	// sale's order inserts behind each other's commits: with more connections in flight,
	// PostgreSQL flushes their WAL together.
	DatabasePoolSize int
	RedisURL         string
	// Redis holds the Redis Cluster addresses, credentials and TLS settings (REDIS_*; see
	// redis.go).
	Redis        RedisSettings
	RabbitMQURL  string
	KafkaBrokers []string
	// Kafka holds the brokers' TLS and SASL settings (KAFKA_TLS, KAFKA_SASL_*; see kafka.go).
	Kafka              KafkaSettings
	JWTSecret          string
	AdminEmail         string
	AdminPassword      string
	PaymentFailureRate float64
	ReservationTTL     time.Duration
	// AccessTokenTTL is how long an access token is valid (ACCESS_TOKEN_TTL, default 15m),
	// and so how long a websocket signed in with one stays open without a new connection_init.
	AccessTokenTTL time.Duration
	// BcryptCost is the password hashing cost (BCRYPT_COST); 0 means bcrypt's default.
	BcryptCost int
	// Namespace prefixes every Redis key, RabbitMQ exchange and queue and Kafka topic and
	// group (NAMESPACE; empty in production). Tests give each run its own, and so can two
	// shops sharing one Redis.
	Namespace string
	// NotifyWebhookURL, when set, receives every notification (NOTIFY_WEBHOOK_URL), signed
	// with NotifyWebhookSecret (NOTIFY_WEBHOOK_SECRET). The secret is never the JWT key: a
	// webhook receiver holds it, and must not be able to sign access tokens.
	NotifyWebhookURL    string
	NotifyWebhookSecret string
	// Environment is APP_ENV: "development" (the default) or "production", which refuses
	// development secrets and turns introspection and the playground off unless asked.
	Environment string
	// NoIntrospection and NoPlayground turn off schema introspection and the playground at
	// GET / (GRAPHQL_INTROSPECTION, GRAPHQL_PLAYGROUND: true or false; on in development,
	// off in production unless set to true).
	NoIntrospection bool
	NoPlayground    bool
	// CORSOrigins are the browser origins allowed to call the API (CORS_ORIGINS, comma-
	// separated; "*" allows any). Empty: no cross-origin calls.
	CORSOrigins []string
	// OpsAddr (OPS_HTTP_ADDR) serves /metrics and /readyz with each dependency's error to
	// operators. Empty: they are on HTTP_ADDR, which production refuses, since /metrics and
	// the errors describe the internals to anyone.
	OpsAddr string
	// ReadTimeout bounds reading a request's headers and body and WriteTimeout writing its
	// answer (HTTP_READ_TIMEOUT, default 10s; HTTP_WRITE_TIMEOUT, default 30s); websockets
	// are exempt once upgraded. A client cannot hold a connection by sending slowly.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// WebsocketInitTimeout closes a websocket that has not sent connection_init in time
	// (WS_INIT_TIMEOUT, default 5s).
	WebsocketInitTimeout time.Duration
	// WebsocketsPerAddress caps the open websockets of one client address
	// (WS_MAX_CONNECTIONS_PER_ADDRESS, default 100: enough for a household or an office behind
	// one NAT), and SubscriptionsPerWebsocket the subscriptions of one websocket
	// (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION, default 20).
	WebsocketsPerAddress      int
	SubscriptionsPerWebsocket int
	// PaymentLatency and PaymentTimeoutRate shape the mock payment gateway
	// (PAYMENT_LATENCY, default 20ms; PAYMENT_TIMEOUT_RATE, default 0).
	PaymentLatency     time.Duration
	PaymentTimeoutRate float64
	// StockUpdatesPerSecond caps the stock updates each subscriber gets a second
	// (STOCK_UPDATES_PER_SECOND, default 10); the final value is always delivered.
	StockUpdatesPerSecond int
	// ComplexityLimit overrides graph.ComplexityLimit (tests and benchmarks that send
	// deliberately large queries; the size limits rise with it); zero keeps the default.
	ComplexityLimit int
	// QueryCacheBytes bounds the parsed-query cache (QUERY_CACHE_BYTES, default
	// graph.DefaultQueryCacheBytes, 32 MiB) and PersistedQueriesBytes the automatic persisted
	// queries kept (PERSISTED_QUERIES_BYTES, default graph.DefaultPersistedQueriesBytes, 8 MiB):
	// the memory clients can fill with the documents they send.
	QueryCacheBytes       int
	PersistedQueriesBytes int
	// RetryDelays and MaxAttempts shape the RabbitMQ workers' retries (nil and zero: the
	// defaults of stores/rabbitmq, 1s, 5s, 30s and 5 attempts). Tests shorten them.
	RetryDelays []time.Duration
	MaxAttempts int
	// RelayClaimTimeout bounds how long the relay holds claimed outbox rows while a broker
	// confirms them (RELAY_CLAIM_TIMEOUT, default relay.DefaultClaimTimeout); past it the
	// claim rolls back and is tried again later.
	RelayClaimTimeout time.Duration
	// Retention of the rows the pruner deletes (see workers/pruner): outbox rows sent to
	// every broker (OUTBOX_RETENTION), the consumers' records of events already handled
	// (DEDUP_RETENTION) and refresh tokens spent, revoked or expired
	// (REFRESH_TOKEN_RETENTION), and the ledger's reservations (RESERVATION_RETENTION). Zero
	// takes the pruner's defaults.
	OutboxRetention       time.Duration
	DedupRetention        time.Duration
	RefreshTokenRetention time.Duration
	ReservationRetention  time.Duration
	// RedisReadyGrace is how long Redis may fail readiness checks before a replica reports
	// itself not ready (REDIS_READY_GRACE, default 10s): a blip should not take every
	// replica out of service at once.
	RedisReadyGrace time.Duration
	// RateLimits are the budgets of RATE_LIMIT_* (DefaultRateLimits; RATE_LIMIT_OFF=true
	// turns every one off). The zero value, as tests start with, limits nothing.
	RateLimits ratelimit.Budgets
	// RateLimitLocalKeys bounds the keys each process's own limiter remembers
	// (RATE_LIMIT_LOCAL_KEYS, default ratelimit.DefaultLocalKeys).
	RateLimitLocalKeys int
	// TrustedProxies are the peers whose X-Forwarded-For names the client (TRUSTED_PROXIES;
	// nil: the loopback, empty: none).
	TrustedProxies []netip.Prefix
	// ShutdownDelay is how long an API told to stop (SIGTERM) keeps serving with /readyz
	// failing before it stops taking requests (SHUTDOWN_DELAY, default 5s): the time load
	// balancers take to notice and send new requests to the other replicas.
	ShutdownDelay time.Duration
}

// minDedupRetention is the least DEDUP_RETENTION accepted: RabbitMQ's retries and a Kafka
// group's rebalance redeliver within minutes, and an hour leaves room for a consumer that was
// down for a while. The default (workers/pruner) is far longer.
const minDedupRetention = time.Hour

// minReservationRetention is the least RESERVATION_RETENTION accepted: a rebuild reads the
// reservations of the last orphan grace (checkout.Config), and an order's hold lives at most its reservation's
// TTL; an hour outlasts both.
const minReservationRetention = time.Hour

// DefaultShutdownDelay is SHUTDOWN_DELAY's default: Kubernetes takes a few seconds to take a
// terminating pod's address out of its Services, and 5s with ShutdownTimeout stays within
// the pod's default 30s grace period.
const DefaultShutdownDelay = 5 * time.Second

// DevJWTSecret is the secret used when JWT_SECRET is unset. Anyone can read it here, so a
// warning is logged whenever it is in use.
const DevJWTSecret = "flashsale-development-secret-do-not-use-in-production"

// DefaultShards are the four local shard databases of `make run`.
func DefaultShards() []string {
	shards := make([]string, 4)
	for i := range shards {
		shards[i] = fmt.Sprintf("postgres://postgres@localhost:5432/flashsale_shard_%d?sslmode=disable", i)
	}
	return shards
}

// ConfigFromEnv reads the settings (the README's settings table) from the environment.
func ConfigFromEnv() (Config, error) {
	c := Config{
		HTTPAddr:         env("HTTP_ADDR", ":8080"),
		DatabaseShards:   DefaultShards(),
		RedisURL:         env("REDIS_URL", "redis://localhost:6379/0"),
		RabbitMQURL:      env("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/"),
		JWTSecret:        env("JWT_SECRET", DevJWTSecret),
		AdminEmail:       env("ADMIN_EMAIL", "admin@example.com"),
		AdminPassword:    env("ADMIN_PASSWORD", DevAdminPassword),
		ReservationTTL:   15 * time.Minute,
		AccessTokenTTL:   15 * time.Minute,
		Namespace:        os.Getenv("NAMESPACE"),
		PaymentLatency:   20 * time.Millisecond,
		DatabasePoolSize: 16,
		ShutdownDelay:    DefaultShutdownDelay,
	}
	c.NotifyWebhookURL = os.Getenv("NOTIFY_WEBHOOK_URL")
	c.NotifyWebhookSecret = os.Getenv("NOTIFY_WEBHOOK_SECRET")
	if err := c.readSecurity(); err != nil {
		return c, err
	}
	if s := os.Getenv("DATABASE_SHARDS"); s != "" {
		c.DatabaseShards = splitList(s)
	}
	if s := os.Getenv("KAFKA_BROKERS"); s != "" {
		c.KafkaBrokers = splitList(s)
	}
	var err error
	if s := os.Getenv("PAYMENT_FAILURE_RATE"); s != "" {
		if c.PaymentFailureRate, err = strconv.ParseFloat(s, 64); err != nil || c.PaymentFailureRate < 0 || c.PaymentFailureRate > 1 {
			return c, fmt.Errorf("PAYMENT_FAILURE_RATE must be a number between 0 and 1, got %q", s)
		}
	}
	if s := os.Getenv("RESERVATION_TTL"); s != "" {
		if c.ReservationTTL, err = time.ParseDuration(s); err != nil || c.ReservationTTL <= 0 {
			return c, fmt.Errorf("RESERVATION_TTL must be a positive duration such as 15m, got %q", s)
		}
	}
	if s := os.Getenv("ACCESS_TOKEN_TTL"); s != "" {
		if c.AccessTokenTTL, err = time.ParseDuration(s); err != nil || c.AccessTokenTTL < time.Second || c.AccessTokenTTL > 24*time.Hour {
			return c, fmt.Errorf("ACCESS_TOKEN_TTL must be a duration between 1s and 24h such as 15m, got %q", s)
		}
	}
	if s := os.Getenv("PAYMENT_LATENCY"); s != "" {
		if c.PaymentLatency, err = time.ParseDuration(s); err != nil || c.PaymentLatency < 0 {
			return c, fmt.Errorf("PAYMENT_LATENCY must be a duration such as 20ms, got %q", s)
		}
	}
	if s := os.Getenv("PAYMENT_TIMEOUT_RATE"); s != "" {
		if c.PaymentTimeoutRate, err = strconv.ParseFloat(s, 64); err != nil || c.PaymentTimeoutRate < 0 || c.PaymentTimeoutRate > 1 {
			return c, fmt.Errorf("PAYMENT_TIMEOUT_RATE must be a number between 0 and 1, got %q", s)
		}
	}
	if s := os.Getenv("STOCK_UPDATES_PER_SECOND"); s != "" {
		if c.StockUpdatesPerSecond, err = strconv.Atoi(s); err != nil || c.StockUpdatesPerSecond <= 0 {
			return c, fmt.Errorf("STOCK_UPDATES_PER_SECOND must be a positive integer, got %q", s)
		}
	}
	if s := os.Getenv("SHUTDOWN_DELAY"); s != "" {
		if c.ShutdownDelay, err = time.ParseDuration(s); err != nil || c.ShutdownDelay < 0 || c.ShutdownDelay > time.Minute {
			return c, fmt.Errorf("SHUTDOWN_DELAY must be a duration between 0s and 1m such as 5s, got %q", s)
		}
	}
	if s := os.Getenv("DATABASE_POOL_SIZE"); s != "" {
		if c.DatabasePoolSize, err = strconv.Atoi(s); err != nil || c.DatabasePoolSize <= 0 {
			return c, fmt.Errorf("DATABASE_POOL_SIZE must be a positive integer, got %q", s)
		}
	}
	for _, d := range []struct {
		key  string
		into *time.Duration
	}{
		{"RELAY_CLAIM_TIMEOUT", &c.RelayClaimTimeout},
		{"OUTBOX_RETENTION", &c.OutboxRetention},
		{"DEDUP_RETENTION", &c.DedupRetention},
		{"REFRESH_TOKEN_RETENTION", &c.RefreshTokenRetention},
		{"RESERVATION_RETENTION", &c.ReservationRetention},
		{"REDIS_READY_GRACE", &c.RedisReadyGrace},
	} {
		if s := os.Getenv(d.key); s != "" {
			if *d.into, err = time.ParseDuration(s); err != nil || *d.into <= 0 {
				return c, fmt.Errorf("%s must be a positive duration such as 48h, got %q", d.key, s)
			}
		}
	}
	if c.DedupRetention != 0 && c.DedupRetention < minDedupRetention {
		return c, fmt.Errorf("DEDUP_RETENTION must be at least %v: a redelivered event must still find its record, got %v",
			minDedupRetention, c.DedupRetention)
	}
	if c.ReservationRetention != 0 && c.ReservationRetention < minReservationRetention {
		return c, fmt.Errorf("RESERVATION_RETENTION must be at least %v: a rebuild reads the recent reservations, got %v",
			minReservationRetention, c.ReservationRetention)
	}
	if s := os.Getenv("QUERY_CACHE_BYTES"); s != "" {
		if c.QueryCacheBytes, err = strconv.Atoi(s); err != nil || c.QueryCacheBytes < 1<<20 {
			return c, fmt.Errorf("QUERY_CACHE_BYTES must be a number of bytes, at least 1048576 (1 MiB), got %q", s)
		}
	}
	if s := os.Getenv("PERSISTED_QUERIES_BYTES"); s != "" {
		if c.PersistedQueriesBytes, err = strconv.Atoi(s); err != nil || c.PersistedQueriesBytes < 1<<20 {
			return c, fmt.Errorf("PERSISTED_QUERIES_BYTES must be a number of bytes, at least 1048576 (1 MiB), got %q", s)
		}
	}
	if s := os.Getenv("BCRYPT_COST"); s != "" {
		if c.BcryptCost, err = strconv.Atoi(s); err != nil || c.BcryptCost < 4 || c.BcryptCost > 31 {
			return c, fmt.Errorf("BCRYPT_COST must be between 4 and 31, got %q", s)
		}
	}
	if err := c.rateLimitsFromEnv(); err != nil {
		return c, err
	}
	if err := c.readRedis(); err != nil {
		return c, err
	}
	if err := c.readKafka(); err != nil {
		return c, err
	}
	return c, nil
}

// LogValue masks secrets, so the config can be logged at start.
func (c Config) LogValue() slog.Value {
	shards := make([]string, len(c.DatabaseShards))
	for i, s := range c.DatabaseShards {
		shards[i] = redact(s)
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.Any("database_shards", shards),
		c.redisLogAttr(),
		slog.String("rabbitmq_url", redact(c.RabbitMQURL)),
		slog.Any("kafka_brokers", c.KafkaBrokers),
		slog.Any("kafka", c.Kafka),
		slog.String("jwt_secret", "***"),
		slog.String("admin_email", c.AdminEmail),
		slog.Float64("payment_failure_rate", c.PaymentFailureRate),
		slog.Duration("reservation_ttl", c.ReservationTTL),
		slog.Duration("relay_claim_timeout", c.RelayClaimTimeout),
		slog.Duration("outbox_retention", c.OutboxRetention),
		slog.Duration("dedup_retention", c.DedupRetention),
		slog.Duration("refresh_token_retention", c.RefreshTokenRetention),
		slog.Duration("reservation_retention", c.ReservationRetention),
		slog.Duration("redis_ready_grace", c.RedisReadyGrace),
		slog.Duration("shutdown_delay", c.ShutdownDelay),
		slog.Duration("access_token_ttl", c.AccessTokenTTL),
		slog.String("namespace", c.Namespace),
		slog.String("notify_webhook_url", redact(c.NotifyWebhookURL)),
		slog.String("environment", c.Environment),
		slog.Bool("introspection", !c.NoIntrospection),
		slog.Bool("playground", !c.NoPlayground),
		slog.Any("cors_origins", c.CORSOrigins),
		slog.String("ops_http_addr", c.OpsAddr),
		slog.Any("rate_limits", c.RateLimits),
		slog.Any("trusted_proxies", c.trustedProxies()),
		slog.String("otel_exporter_otlp_endpoint", redact(cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))),
	)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "***"
	}
	return u.Redacted()
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Names derived from the namespace.
func (c Config) redisPrefix() string {
	if c.Namespace == "" {
		return ""
	}
	return c.Namespace + ":"
}

func (c Config) name(base string) string {
	if c.Namespace == "" {
		return base
	}
	return c.Namespace + "." + base
}

// The brokers' names: one exchange of order events with a queue per consuming worker, and
// one Kafka topic of the same events for analytics.
func (c Config) OrdersExchange() string     { return c.name("flashsale.orders") }
func (c Config) PaymentsQueue() string      { return c.name("flashsale.orders.payments") }
func (c Config) NotificationsQueue() string { return c.name("flashsale.orders.notifications") }
func (c Config) EventsTopic() string        { return c.name("flashsale.order-events") }
func (c Config) AnalyticsGroup() string     { return c.name("flashsale.analytics") }

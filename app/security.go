package app

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// The environments APP_ENV names.
const (
	Development = "development"
	Production  = "production"
)

// Serving limits' defaults (see Config).
const (
	DefaultReadTimeout               = 10 * time.Second
	DefaultWriteTimeout              = 30 * time.Second
	DefaultWebsocketInitTimeout      = 5 * time.Second
	DefaultWebsocketsPerAddress      = 100
	DefaultSubscriptionsPerWebsocket = 20
)

// DevAdminPassword is ADMIN_PASSWORD's default: fine on a laptop, refused in production.
const DevAdminPassword = "admin-password"

// DevWebhookSecret signs notification webhooks in development when NOTIFY_WEBHOOK_SECRET is
// unset; production refuses to start without a secret of its own.
const DevWebhookSecret = "flashsale-development-webhook-secret"

// Production reports whether the shop runs in front of the public (APP_ENV=production).
func (c Config) Production() bool { return c.Environment == Production }

// withServingDefaults fills the serving limits a hand-built Config (tests, benchmarks) leaves
// at zero with ConfigFromEnv's defaults.
func (c Config) withServingDefaults() Config {
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.WebsocketInitTimeout = cmp.Or(c.WebsocketInitTimeout, DefaultWebsocketInitTimeout)
	c.WebsocketsPerAddress = cmp.Or(c.WebsocketsPerAddress, DefaultWebsocketsPerAddress)
	c.SubscriptionsPerWebsocket = cmp.Or(c.SubscriptionsPerWebsocket, DefaultSubscriptionsPerWebsocket)
	return c
}

// readSecurity reads the settings that decide what the public port exposes and how long a
// client may hold a connection.
func (c *Config) readSecurity() error {
	c.Environment = env("APP_ENV", Development)
	if c.Environment != Development && c.Environment != Production {
		return fmt.Errorf("APP_ENV must be %q or %q, got %q", Development, Production, c.Environment)
	}
	introspection, err := envBool("GRAPHQL_INTROSPECTION", !c.Production())
	if err != nil {
		return err
	}
	playground, err := envBool("GRAPHQL_PLAYGROUND", !c.Production())
	if err != nil {
		return err
	}
	c.NoIntrospection, c.NoPlayground = !introspection, !playground
	if s := os.Getenv("CORS_ORIGINS"); s != "" {
		c.CORSOrigins = splitList(s)
	}
	c.OpsAddr = os.Getenv("OPS_HTTP_ADDR")
	durations := []struct {
		key string
		to  *time.Duration
		def time.Duration
	}{
		{"HTTP_READ_TIMEOUT", &c.ReadTimeout, DefaultReadTimeout},
		{"HTTP_WRITE_TIMEOUT", &c.WriteTimeout, DefaultWriteTimeout},
		{"WS_INIT_TIMEOUT", &c.WebsocketInitTimeout, DefaultWebsocketInitTimeout},
	}
	for _, d := range durations {
		if *d.to, err = envDuration(d.key, d.def); err != nil {
			return err
		}
	}
	if c.WebsocketsPerAddress, err = envPositive("WS_MAX_CONNECTIONS_PER_ADDRESS", DefaultWebsocketsPerAddress); err != nil {
		return err
	}
	if c.SubscriptionsPerWebsocket, err = envPositive("WS_MAX_SUBSCRIPTIONS_PER_CONNECTION", DefaultSubscriptionsPerWebsocket); err != nil {
		return err
	}
	if c.NotifyWebhookURL != "" && c.NotifyWebhookSecret == "" && !c.Production() {
		c.NotifyWebhookSecret = DevWebhookSecret
	}
	return nil
}

// CheckProduction refuses, in production, what the API must not start with: the development
// JWT secret (anyone can read it here, and sign admin tokens with it), the default admin
// password, a bad webhook secret, and operator endpoints on the public port.
func (c Config) CheckProduction() error {
	if !c.Production() {
		return nil
	}
	var errs []error
	if c.JWTSecret == DevJWTSecret || len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must be set to a secret of at least 32 bytes"))
	}
	if c.AdminPassword == DevAdminPassword || len(c.AdminPassword) < 12 {
		errs = append(errs, errors.New("ADMIN_PASSWORD must be set to a password of at least 12 characters"))
	}
	if c.OpsAddr == "" {
		errs = append(errs, errors.New("OPS_HTTP_ADDR must be set to a port of its own: /metrics and dependency errors are not served on the public port"))
	}
	errs = append(errs, c.CheckWebhook())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("APP_ENV=production: %w", err)
	}
	return nil
}

// CheckWebhook refuses, in production, a notification webhook without a secret of its own: a
// webhook receiver holds the secret, and must never hold the key that signs access tokens.
func (c Config) CheckWebhook() error {
	if !c.Production() || c.NotifyWebhookURL == "" {
		return nil
	}
	switch {
	case len(c.NotifyWebhookSecret) < 16:
		return errors.New("NOTIFY_WEBHOOK_SECRET must be set (at least 16 bytes) when NOTIFY_WEBHOOK_URL is")
	case c.NotifyWebhookSecret == c.JWTSecret:
		return errors.New("NOTIFY_WEBHOOK_SECRET must differ from JWT_SECRET")
	}
	return nil
}

func envBool(key string, def bool) (bool, error) {
	s := os.Getenv(key)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s must be true or false, got %q", key, s)
	}
	return b, nil
}

func envDuration(key string, def time.Duration) (time.Duration, error) {
	s := os.Getenv(key)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s must be a positive duration such as 10s, got %q", key, s)
	}
	return d, nil
}

func envPositive(key string, def int) (int, error) {
	s := os.Getenv(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer, got %q", key, s)
	}
	return n, nil
}

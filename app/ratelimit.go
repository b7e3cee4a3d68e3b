package app

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/ratelimit"
	"github.com/flashsale/flashsale/stores/redis"
)

// DefaultRateLimits are the budgets of RATE_LIMIT_*: generous for a person, even many
// behind one address, and for a buyer retrying through a sale, while a script hammering
// one account, address or viewer is held to a few times a person's pace.
func DefaultRateLimits() ratelimit.Budgets {
	return ratelimit.Budgets{
		Requests:      flashsale.Limit{Rate: 20, Period: time.Second, Burst: 100},
		Orders:        flashsale.Limit{Rate: 2, Period: time.Second, Burst: 10},
		Passwords:     flashsale.Limit{Rate: 10, Period: time.Minute, Burst: 20},
		Accounts:      flashsale.Limit{Rate: 5, Period: time.Minute, Burst: 10},
		Websockets:    flashsale.Limit{Rate: 2, Period: time.Second, Burst: 20},
		Subscriptions: flashsale.Limit{Rate: 5, Period: time.Second, Burst: 20},
	}
}

// rateLimitSettings are the variables of each budget.
var rateLimitSettings = []struct {
	env    string
	budget func(*ratelimit.Budgets) *flashsale.Limit
}{
	{"RATE_LIMIT_REQUESTS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Requests }},
	{"RATE_LIMIT_ORDERS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Orders }},
	{"RATE_LIMIT_PASSWORDS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Passwords }},
	{"RATE_LIMIT_ACCOUNTS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Accounts }},
	{"RATE_LIMIT_WEBSOCKETS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Websockets }},
	{"RATE_LIMIT_SUBSCRIPTIONS", func(b *ratelimit.Budgets) *flashsale.Limit { return &b.Subscriptions }},
}

// rateLimitsFromEnv reads RATE_LIMIT_OFF, RATE_LIMIT_* and TRUSTED_PROXIES into c.
func (c *Config) rateLimitsFromEnv() error {
	c.RateLimits = DefaultRateLimits()
	for _, s := range rateLimitSettings {
		if v := os.Getenv(s.env); v != "" {
			l, err := flashsale.ParseLimit(v)
			if err != nil {
				return fmt.Errorf("%s: %w", s.env, err)
			}
			*s.budget(&c.RateLimits) = l
		}
	}
	if s := os.Getenv("RATE_LIMIT_OFF"); s != "" {
		off, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("RATE_LIMIT_OFF must be true or false, got %q", s)
		}
		if off {
			c.RateLimits = ratelimit.Budgets{}
		}
	}
	if s := os.Getenv("RATE_LIMIT_LOCAL_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("RATE_LIMIT_LOCAL_KEYS must be a positive integer, got %q", s)
		}
		c.RateLimitLocalKeys = n
	}
	if s := os.Getenv("TRUSTED_PROXIES"); s != "" {
		proxies, err := ParseTrustedProxies(s)
		if err != nil {
			return err
		}
		c.TrustedProxies = proxies
	}
	return nil
}

// ParseTrustedProxies reads TRUSTED_PROXIES: comma-separated CIDRs or addresses, or "none".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	proxies := []netip.Prefix{}
	if strings.TrimSpace(s) == "none" {
		return proxies, nil
	}
	for _, item := range splitList(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("TRUSTED_PROXIES: %q is neither a CIDR nor an address", item)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	return proxies, nil
}

// trustedProxies are the configured proxies, or the loopback when none are.
func (c Config) trustedProxies() []netip.Prefix {
	if c.TrustedProxies == nil {
		return graph.LoopbackProxies
	}
	return c.TrustedProxies
}

// newRateLimits returns the rate limits of cfg, shared through client, or nil when every
// budget is off.
func newRateLimits(cfg Config, client goredis.UniversalClient, log *slog.Logger, reg prometheus.Registerer) *ratelimit.Policy {
	if cfg.RateLimits == (ratelimit.Budgets{}) {
		return nil
	}
	return ratelimit.New(ratelimit.Config{
		Budgets:   cfg.RateLimits,
		Shared:    redis.NewRateLimiter(client, cfg.redisPrefix()),
		LocalKeys: cfg.RateLimitLocalKeys,
		Log:       log,
		Registry:  reg,
	})
}

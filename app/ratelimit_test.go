package app

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// The settings are read from the environment (not parallel: t.Setenv).
func TestRateLimitSettings(t *testing.T) {
	t.Setenv("RATE_LIMIT_ORDERS", "1/1m:3")
	t.Setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if want := (flashsale.Limit{Rate: 1, Period: time.Minute, Burst: 3}); c.RateLimits.Orders != want {
		t.Errorf("orders = %v, want %v", c.RateLimits.Orders, want)
	}
	if c.RateLimits.Requests != DefaultRateLimits().Requests {
		t.Errorf("requests = %v, want the default %v", c.RateLimits.Requests, DefaultRateLimits().Requests)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] {
		t.Errorf("trusted proxies = %v, want %v", c.TrustedProxies, want)
	}

	t.Setenv("RATE_LIMIT_OFF", "true")
	if c, err = ConfigFromEnv(); err != nil || !isOff(c) {
		t.Errorf("RATE_LIMIT_OFF=true: %v, %v; want every budget off", c.RateLimits, err)
	}
	t.Setenv("TRUSTED_PROXIES", "none")
	if c, err = ConfigFromEnv(); err != nil || c.TrustedProxies == nil || len(c.trustedProxies()) != 0 {
		t.Errorf("TRUSTED_PROXIES=none: %v, %v; want no proxy trusted", c.TrustedProxies, err)
	}
	for env, bad := range map[string]string{"RATE_LIMIT_REQUESTS": "lots", "TRUSTED_PROXIES": "10.0.0.0/33", "RATE_LIMIT_OFF": "maybe"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, bad)
			if _, err := ConfigFromEnv(); err == nil {
				t.Errorf("%s=%s was accepted", env, bad)
			}
		})
	}
}

func isOff(c Config) bool { return newRateLimits(c, nil, nil, nil) == nil }

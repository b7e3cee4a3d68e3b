package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
)

// The retention, relay and readiness settings are read as durations, and refused with an
// error naming the variable when they are not positive, or, for DEDUP_RETENTION and
// RESERVATION_RETENTION, too short for what still reads them. (Not parallel: t.Setenv changes the whole process's environment.)
func TestConfigReadsRetentionAndReadinessSettings(t *testing.T) {
	t.Setenv("RELAY_CLAIM_TIMEOUT", "3s")
	t.Setenv("OUTBOX_RETENTION", "48h")
	t.Setenv("DEDUP_RETENTION", "240h")
	t.Setenv("REFRESH_TOKEN_RETENTION", "72h")
	t.Setenv("RESERVATION_RETENTION", "36h")
	t.Setenv("REDIS_READY_GRACE", "20s")
	c, err := app.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name      string
		got, want time.Duration
	}{
		{"RelayClaimTimeout", c.RelayClaimTimeout, 3 * time.Second},
		{"OutboxRetention", c.OutboxRetention, 48 * time.Hour},
		{"DedupRetention", c.DedupRetention, 240 * time.Hour},
		{"RefreshTokenRetention", c.RefreshTokenRetention, 72 * time.Hour},
		{"ReservationRetention", c.ReservationRetention, 36 * time.Hour},
		{"RedisReadyGrace", c.RedisReadyGrace, 20 * time.Second},
	} {
		if s.got != s.want {
			t.Errorf("%s = %v, want %v", s.name, s.got, s.want)
		}
	}

	for _, bad := range []struct{ key, value string }{
		{"RELAY_CLAIM_TIMEOUT", "0s"},
		{"OUTBOX_RETENTION", "a day"},
		{"REFRESH_TOKEN_RETENTION", "-1h"},
		{"REDIS_READY_GRACE", "10"},
		{"DEDUP_RETENTION", "30m"},
		{"RESERVATION_RETENTION", "10m"},
	} {
		t.Run(bad.key, func(t *testing.T) {
			t.Setenv(bad.key, bad.value)
			if _, err := app.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), bad.key) {
				t.Errorf("%s=%q: error %v; want one naming %s", bad.key, bad.value, err, bad.key)
			}
		})
	}
}

// SHUTDOWN_DELAY defaults to DefaultShutdownDelay, takes any duration up to a minute (zero
// included: a process alone behind no load balancer), and refuses the rest naming itself.
// (Not parallel: t.Setenv.)
func TestConfigReadsShutdownDelay(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"", app.DefaultShutdownDelay, false},
		{"0s", 0, false},
		{"12s", 12 * time.Second, false},
		{"-1s", 0, true},
		{"2m", 0, true},
		{"soon", 0, true},
	} {
		t.Run(tt.value, func(t *testing.T) {
			t.Setenv("SHUTDOWN_DELAY", tt.value)
			c, err := app.ConfigFromEnv()
			switch {
			case tt.bad && (err == nil || !strings.Contains(err.Error(), "SHUTDOWN_DELAY")):
				t.Errorf("SHUTDOWN_DELAY=%q: error %v; want one naming SHUTDOWN_DELAY", tt.value, err)
			case !tt.bad && err != nil:
				t.Errorf("SHUTDOWN_DELAY=%q: %v", tt.value, err)
			case !tt.bad && c.ShutdownDelay != tt.want:
				t.Errorf("SHUTDOWN_DELAY=%q: ShutdownDelay = %v, want %v", tt.value, c.ShutdownDelay, tt.want)
			}
		})
	}
}

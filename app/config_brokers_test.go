package app_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/app"
)

// REDIS_CLUSTER_ADDRS and the Redis and Kafka credentials are part of the configuration, and
// the startup log names the Redis actually used, never a password. (Not parallel: t.Setenv.)
func TestConfigReadsRedisClusterAndCredentials(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://unused.example:6379/0")
	t.Setenv("REDIS_CLUSTER_ADDRS", "10.0.0.1:7000, 10.0.0.2:7000,10.0.0.3:7000")
	t.Setenv("REDIS_USERNAME", "shop")
	t.Setenv("REDIS_PASSWORD", "redis-secret")
	t.Setenv("REDIS_TLS", "true")
	t.Setenv("KAFKA_TLS", "true")
	t.Setenv("KAFKA_SASL_MECHANISM", "scram-sha-256")
	t.Setenv("KAFKA_SASL_USERNAME", "analytics")
	t.Setenv("KAFKA_SASL_PASSWORD", "kafka-secret")
	c, err := app.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}
	if got := c.Redis.ClusterAddrs; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Redis.ClusterAddrs = %q, want %q", got, want)
	}
	if c.Redis.Username != "shop" || c.Redis.Password != "redis-secret" || !c.Redis.TLS {
		t.Errorf("Redis = %+v; want user shop, its password and TLS", c.Redis)
	}
	if c.Kafka.SASLMechanism != "SCRAM-SHA-256" || !c.Kafka.TLS {
		t.Errorf("Kafka = %+v; want SCRAM-SHA-256 over TLS", c.Kafka)
	}
	if opts, err := c.Kafka.Options(); err != nil || len(opts) != 2 {
		t.Errorf("Kafka.Options() = %d options, %v; want TLS and SASL", len(opts), err)
	}

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	line := buf.String()
	for _, s := range want {
		if !strings.Contains(line, s) {
			t.Errorf("startup log %q does not name cluster node %s", line, s)
		}
	}
	for _, s := range []string{"unused.example", "redis-secret", "kafka-secret"} {
		if strings.Contains(line, s) {
			t.Errorf("startup log %q shows %q", line, s)
		}
	}
}

func TestConfigRefusesBadRedisAndKafkaSettings(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"REDIS_TLS not a bool", map[string]string{"REDIS_TLS": "yes please"}, "REDIS_TLS"},
		{"Redis CA without TLS", map[string]string{"REDIS_CA_FILE": notPEM}, "REDIS_CA_FILE"},
		{"Redis CA not PEM", map[string]string{"REDIS_TLS": "true", "REDIS_CA_FILE": notPEM}, "REDIS_CA_FILE"},
		{"Redis CA missing", map[string]string{"REDIS_TLS": "true", "REDIS_CA_FILE": notPEM + ".missing"}, "REDIS_CA_FILE"},
		{"KAFKA_TLS not a bool", map[string]string{"KAFKA_TLS": "2"}, "KAFKA_TLS"},
		{"Kafka CA not PEM", map[string]string{"KAFKA_TLS": "true", "KAFKA_CA_FILE": notPEM}, "KAFKA_CA_FILE"},
		{"unknown mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM"},
		{"mechanism without password", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN",
			"KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"},
		{"credentials without mechanism", map[string]string{"KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_MECHANISM"},
		{"PLAIN in the clear in production", map[string]string{"APP_ENV": "production",
			"JWT_SECRET": strings.Repeat("k", 32), "ADMIN_PASSWORD": "a-real-password", "OPS_HTTP_ADDR": ":9090",
			"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_TLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if _, err := app.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one naming %s", err, tt.want)
			}
		})
	}
}

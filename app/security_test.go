package app

import (
	"strings"
	"testing"
	"time"
)

// TestSecuritySettingsFromEnv reads the public-facing settings as each environment sets them.
// t.Setenv forbids t.Parallel, so the cases run one after another.
func TestSecuritySettingsFromEnv(t *testing.T) {
	tests := []struct {
		name                  string
		env                   map[string]string
		introspection, player bool
		origins               []string
		read                  time.Duration
		wantErr               string
	}{
		{name: "development", introspection: true, player: true, read: DefaultReadTimeout},
		{name: "production", env: map[string]string{"APP_ENV": "production"}, read: DefaultReadTimeout},
		{name: "production, introspection asked for", env: map[string]string{"APP_ENV": "production", "GRAPHQL_INTROSPECTION": "true"},
			introspection: true, read: DefaultReadTimeout},
		{name: "origins and timeouts", env: map[string]string{"CORS_ORIGINS": "https://a.example, https://b.example", "HTTP_READ_TIMEOUT": "3s"},
			introspection: true, player: true, origins: []string{"https://a.example", "https://b.example"}, read: 3 * time.Second},
		{name: "unknown environment", env: map[string]string{"APP_ENV": "prod"}, wantErr: "APP_ENV"},
		{name: "bad boolean", env: map[string]string{"GRAPHQL_PLAYGROUND": "maybe"}, wantErr: "GRAPHQL_PLAYGROUND"},
		{name: "bad timeout", env: map[string]string{"HTTP_WRITE_TIMEOUT": "-1s"}, wantErr: "HTTP_WRITE_TIMEOUT"},
		{name: "bad cap", env: map[string]string{"WS_MAX_SUBSCRIPTIONS_PER_CONNECTION": "0"}, wantErr: "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := ConfigFromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v; want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := !c.NoIntrospection; got != tt.introspection {
				t.Errorf("introspection = %v, want %v", got, tt.introspection)
			}
			if got := !c.NoPlayground; got != tt.player {
				t.Errorf("playground = %v, want %v", got, tt.player)
			}
			if strings.Join(c.CORSOrigins, ",") != strings.Join(tt.origins, ",") {
				t.Errorf("CORS origins = %q, want %q", c.CORSOrigins, tt.origins)
			}
			if c.ReadTimeout != tt.read {
				t.Errorf("read timeout = %v, want %v", c.ReadTimeout, tt.read)
			}
		})
	}
}

// TestDevelopmentWebhookSecretIsNotTheJWTKey: a webhook set up on a laptop without a secret
// is signed with a development secret, never with the key that signs access tokens.
func TestDevelopmentWebhookSecretIsNotTheJWTKey(t *testing.T) {
	t.Setenv("NOTIFY_WEBHOOK_URL", "http://localhost:9999/hook")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.NotifyWebhookSecret == "" || c.NotifyWebhookSecret == c.JWTSecret {
		t.Errorf("webhook secret %q; want a development secret of its own", c.NotifyWebhookSecret)
	}
}

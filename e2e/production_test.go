package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// production is what a public deployment sets: APP_ENV=production with secrets of its own
// and the operators' endpoints on a port of their own.
func production(c *app.Config) {
	c.Environment = app.Production
	c.NoIntrospection, c.NoPlayground = true, true
	c.OpsAddr = "127.0.0.1:0"
	c.AdminPassword = "a-long-admin-password"
}

// TestProductionServesNoInternals checks what the public port of a production API shows:
// no introspection, no playground, no /metrics, readiness without errors; the operators'
// port serves the metrics and the errors.
func TestProductionServesNoInternals(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithConfig(production))

	r := s.Do(t, "", `{ __schema { types { name } } }`, nil)
	wantRefused(t, r, flashsale.EINVALID)
	r = s.Do(t, "", `{ __type(name: "Product") { name } }`, nil)
	wantRefused(t, r, flashsale.EINVALID)
	wantPrompt(t, s)

	for _, path := range []string{"/", "/metrics"} {
		if got := getStatus(t, s.URL+path); got != http.StatusNotFound {
			t.Errorf("GET %s on the public port: got %d; want 404", path, got)
		}
	}
	ops := s.API.OpsURL()
	if ops == "" {
		t.Fatal("no operators' port")
	}
	if got := getStatus(t, ops+"/metrics"); got != http.StatusOK {
		t.Errorf("GET /metrics on the operators' port: got %d; want 200", got)
	}
	for _, base := range []string{s.URL, ops} {
		if got := getStatus(t, base+"/readyz"); got != http.StatusOK {
			t.Errorf("GET %s/readyz: got %d; want 200", base, got)
		}
	}
}

// TestReadinessDetailsStayOnTheOpsPort fails a dependency and reads /readyz on both ports:
// the public one says only that it is unavailable; the operators' one says why.
func TestReadinessDetailsStayOnTheOpsPort(t *testing.T) {
	t.Parallel()
	proxy := newRedisProxy(t)
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) {
		production(c)
		c.RedisURL = proxy.URL
		c.RedisReadyGrace = time.Millisecond
	}))
	proxy.Cut(t)
	for _, base := range []string{s.URL, s.API.OpsURL()} {
		testenv.Eventually(t, 10*time.Second, func() error {
			if got := getStatus(t, base+"/readyz"); got != http.StatusServiceUnavailable {
				return fmt.Errorf("GET %s/readyz with Redis cut: %d; want 503", base, got)
			}
			return nil
		})
	}
	public := readyBody(t, s.URL+"/readyz")
	if strings.Contains(public, "dial") || strings.Contains(public, "127.0.0.1") || !strings.Contains(public, "unavailable") {
		t.Errorf("public /readyz with Redis cut: %s; want only \"unavailable\"", public)
	}
	detailed := readyBody(t, s.API.OpsURL()+"/readyz")
	if strings.Contains(detailed, `"redis":"unavailable"`) || strings.Contains(detailed, `"redis":"ok"`) {
		t.Errorf("operators' /readyz with Redis cut: %s; want the error", detailed)
	}
}

// TestProductionRefusesDevelopmentSecrets starts production APIs with each setting that is
// only safe on a laptop: each refuses to start, naming the setting.
func TestProductionRefusesDevelopmentSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		set     func(*app.Config)
		setting string
	}{
		{"development JWT secret", func(c *app.Config) { c.JWTSecret = app.DevJWTSecret }, "JWT_SECRET"},
		{"short JWT secret", func(c *app.Config) { c.JWTSecret = "short-secret-1234" }, "JWT_SECRET"},
		{"default admin password", func(c *app.Config) { c.AdminPassword = app.DevAdminPassword }, "ADMIN_PASSWORD"},
		{"webhook without a secret", func(c *app.Config) { c.NotifyWebhookURL = "https://hooks.example.com/x" }, "NOTIFY_WEBHOOK_SECRET"},
		{"webhook signed with the JWT key", func(c *app.Config) {
			c.NotifyWebhookURL, c.NotifyWebhookSecret = "https://hooks.example.com/x", c.JWTSecret
		}, "NOTIFY_WEBHOOK_SECRET"},
		{"metrics on the public port", func(c *app.Config) { c.OpsAddr = "" }, "OPS_HTTP_ADDR"},
	}
	base := apitest.Start(t).Config // a working config on fresh shards
	for _, tt := range tests {
		cfg := base
		production(&cfg)
		tt.set(&cfg)
		api, err := app.NewAPI(context.Background(), cfg, slog.New(slog.DiscardHandler), app.Options{})
		if err == nil {
			api.Shutdown(context.Background())
			t.Errorf("%s: the API started; want it refused", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.setting) {
			t.Errorf("%s: got %v; want an error naming %s", tt.name, err, tt.setting)
		}
	}
}

// TestCORS sends a browser's preflight and request from an allowed origin and another one.
func TestCORS(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.CORSOrigins = []string{"https://shop.example.com"} }))
	tests := []struct {
		origin string
		want   string
	}{
		{"https://shop.example.com", "https://shop.example.com"},
		{"https://evil.example.net", ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/query", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q; want %q", tt.origin, got, tt.want)
		}
		if tt.want != "" && !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("preflight from %s: Access-Control-Allow-Headers %q; want authorization allowed", tt.origin, resp.Header.Get("Access-Control-Allow-Headers"))
		}

		req, _ = http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("POST from %s: Access-Control-Allow-Origin %q; want %q", tt.origin, got, tt.want)
		}
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readyBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s with a dependency cut: got %d; want 503", url, resp.StatusCode)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("GET %s: body %q is not a JSON object", url, b)
	}
	return string(b)
}

// redisProxy is a Toxiproxy in front of the test's Redis, which a test may cut without
// touching the Redis other tests use.
type redisProxy struct {
	URL  string
	stop func()
}

func (p redisProxy) Cut(t *testing.T) { t.Helper(); p.stop() }

func newRedisProxy(t *testing.T) redisProxy {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy, listen := testenv.Proxy(t, u.Host)
	u.Host = listen
	return redisProxy{URL: u.String(), stop: proxy.Stop}
}

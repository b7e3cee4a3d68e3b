package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// TestLivePageInABrowser opens the live page of a flash sale in Chromium against the whole
// stack (API, relays, payment worker, embedded Kafka) and walks the sale through its states:
// e2e/browser/live.test.mjs, run with node --test, sees the countdown and a disabled Buy
// while the sale is scheduled, signs in and stays signed in past its access token's
// lifetime, buys when Buy opens at the start and hears the confirmation, then sees the
// sell-out as others buy, announced to screen readers no more than every few seconds; a
// second page whose websockets are blocked follows the sale by polling. Set
// LIVE_SCREENSHOT_DIR to keep its screenshots. Chromium and the Node packages come from
// `make e2e-deps`; without them the test fails, never skips.
func TestLivePageInABrowser(t *testing.T) {
	t.Parallel()
	node := browserTools(t)
	const tokenTTL = 8 * time.Second // short, so that the page must refresh before the sale
	s := apitest.StartStack(t, apitest.WithConfig(func(c *app.Config) { c.AccessTokenTTL = tokenTTL }))
	const product, email, password = "Espresso Machine", "page-buyer@example.test", "page-buyer-password"
	p := createProduct(t, s, product, 2000, 100)
	// The script relies on these figures: 10 units, 5 per buyer, $15.00. The start leaves the
	// browser time to open the page and sign in while the sale is scheduled.
	startsAt := time.Now().Add(25 * time.Second)
	saleID := createSale(t, s, p.ID, 10, 5, startsAt, startsAt.Add(time.Hour))
	s.Register(t, email, password, "Page Buyer")

	shots := os.Getenv("LIVE_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join("browser", "live.test.mjs"))
	cmd.Env = append(os.Environ(),
		"LIVE_BASE_URL="+s.URL,
		"LIVE_SALE_ID="+saleID,
		"LIVE_PRODUCT_NAME="+product,
		"LIVE_BUYER_EMAIL="+email,
		"LIVE_BUYER_PASSWORD="+password,
		"LIVE_SCREENSHOT_DIR="+shots,
		"LIVE_STARTS_AT="+startsAt.Format(time.RFC3339Nano),
		"LIVE_TOKEN_TTL_MS="+strconv.FormatInt(tokenTTL.Milliseconds(), 10),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the browser test failed (%v):\n%s", err, out)
	}
	t.Logf("node --test browser/live.test.mjs:\n%s", out)
}

// browserTools returns node's path after checking that Chromium and the browser test's Node
// packages are installed, failing with how to install them if not.
func browserTools(t *testing.T) string {
	t.Helper()
	const hint = "run `make e2e-deps` (npm ci --prefix e2e/browser; apt-get install chromium)"
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is not installed at %s (%v): %s", chromium, err, hint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (%v): %s", err, hint)
	}
	if _, err := os.Stat(filepath.Join("browser", "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("the browser test's Node packages are missing (%v): %s", err, hint)
	}
	return node
}

package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/apitest"
)

// TestLivePageInABrowser opens the live stock page in Chromium against the whole stack (API,
// relays, payment worker, embedded Kafka): e2e/browser/live.test.mjs, run with node --test,
// watches the count drop as others buy, signs in, buys on the page and sees the order PAID,
// then sees the sell-out and the SOLD_OUT code. Set LIVE_SCREENSHOT_DIR to keep its
// screenshot. Chromium and the Node packages come from `make e2e-deps`; without them the test
// fails, never skips.
func TestLivePageInABrowser(t *testing.T) {
	t.Parallel()
	node := browserTools(t)
	s := apitest.StartStack(t)
	const product, email, password = "Espresso Machine", "page-buyer@example.test", "page-buyer-password"
	saleID, _ := activeSale(t, s, product, 10, 5) // the script relies on these figures and $15.00
	s.Register(t, email, password, "Page Buyer")

	shots := os.Getenv("LIVE_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join("browser", "live.test.mjs"))
	cmd.Env = append(os.Environ(),
		"LIVE_BASE_URL="+s.URL,
		"LIVE_SALE_ID="+saleID,
		"LIVE_PRODUCT_NAME="+product,
		"LIVE_BUYER_EMAIL="+email,
		"LIVE_BUYER_PASSWORD="+password,
		"LIVE_SCREENSHOT_DIR="+shots,
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

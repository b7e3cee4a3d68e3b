package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository, seen from this package's directory (where go test runs).
const repoRoot = ".."

// services are the binaries under cmd/ that run as long-lived services, each with the names
// the README's "read by" column gives it. Every other command is a tool.
var services = map[string][]string{
	"api":                  {"api"},
	"relay":                {"relay"},
	"payments-worker":      {"workers", "payments"},
	"notifications-worker": {"workers", "notifications"},
	"analytics-worker":     {"workers", "analytics"},
}

// tools are the commands under cmd/ that are not deployed: the development stack of
// `make run`, the load generator and the benchmarks.
var tools = map[string]bool{"devstack": true, "loadgen": true, "bench": true}

// TestEveryCommandIsAServiceOrATool keeps services and tools in step with cmd/: a new binary
// must be deployed (and so added to services) or named a tool.
func TestEveryCommandIsAServiceOrATool(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join(repoRoot, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		seen[e.Name()] = true
		if services[e.Name()] == nil && !tools[e.Name()] {
			t.Errorf("cmd/%s is neither a deployed service nor a tool: add it to the compose file, the manifests and services", e.Name())
		}
	}
	for name := range services {
		if !seen[name] {
			t.Errorf("services names %s, which cmd/ does not have", name)
		}
	}
}

// setting is a row of the README's settings table.
type setting struct {
	readBy []string // "all", "api", "relay", "workers", "payments", ...
}

// readsIt reports whether the binary named bin reads s.
func (s setting) readsIt(bin string) bool {
	for _, who := range s.readBy {
		if who == "all" {
			return true
		}
		for _, name := range services[bin] {
			if who == name {
				return true
			}
		}
	}
	return false
}

var backticked = regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")

// readSettings parses the settings table of the README: the first column names one or more
// variables, the third says which binaries read them.
func readSettings(t *testing.T) map[string]setting {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Settings\n")
	if !ok {
		t.Fatal("README.md has no Settings section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	settings := map[string]setting{}
	header := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !header {
			header = true
			if len(cells) < 3 || cells[2] != "read by" {
				t.Fatalf("README settings table: want a third column \"read by\", got %q", line)
			}
			continue
		}
		if len(cells) < 3 || strings.HasPrefix(cells[0], "---") {
			continue
		}
		var readBy []string
		for _, who := range strings.Split(cells[2], ",") {
			readBy = append(readBy, strings.TrimSpace(who))
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			settings[m[1]] = setting{readBy: readBy}
		}
	}
	if len(settings) < 10 {
		t.Fatalf("README settings table: read %d settings, want the whole table", len(settings))
	}
	return settings
}

// goRuntime are variables the Go runtime reads, not the project: they are not settings.
var goRuntime = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true}

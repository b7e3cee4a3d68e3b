package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The probes are the sizes the issue measured, and the persisted ones carry their own
// hash, distinct from each other: a probe shrunk by mistake would prove nothing.
func TestAbuseProbesAreTheIssues(t *testing.T) {
	t.Parallel()
	probes := map[string]Probe{}
	for _, p := range AbuseProbes() {
		probes[p.Name] = p
	}
	for name, want := range map[string]struct{ min, max int }{
		"introspection-aliases":       {100_000, 200_000},
		"typename-flood":              {800_000, 1 << 20},
		"login-aliases":               {2_000, 5_000},
		"large-persisted-query":       {700_000, 710_000},
		"introspection-aliases-small": {14_000, 20_000},
		"typename-flood-small":        {16_000, 17_000},
		"token-flood":                 {12_000, 12_100},
	} {
		p, ok := probes[name]
		if !ok {
			t.Errorf("no probe %q", name)
			continue
		}
		if n := len(p.Query); n < want.min || n > want.max {
			t.Errorf("%s: %d bytes, want %d to %d", name, n, want.min, want.max)
		}
	}
	if got := strings.Count(probes["login-aliases"].Query, "login("); got != 29 {
		t.Errorf("login-aliases has %d logins, want 29", got)
	}
	a, b := LargePersistedQuery(1), LargePersistedQuery(2)
	for _, p := range []Probe{a, b} {
		sum := sha256.Sum256([]byte(p.Query))
		if p.Hash() != hex.EncodeToString(sum[:]) {
			t.Errorf("a persisted probe's hash %q is not its query's", p.Hash())
		}
	}
	if a.Hash() == b.Hash() {
		t.Error("two persisted probes share a hash; want distinct documents")
	}
}

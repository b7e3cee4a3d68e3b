package flashsale_test

import (
	"testing"

	"github.com/flashsale/flashsale"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"a@example.com", "a@example.com"},
		{" A@Example.COM\t", "a@example.com"},
		{"Jose\u0301@example.com", "jos\u00e9@example.com"}, // decomposed é becomes composed
		{"jos\u00e9@example.com", "jos\u00e9@example.com"},
	} {
		if got := flashsale.NormalizeEmail(tc.in); got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if a, b := flashsale.EmailBucket(flashsale.NormalizeEmail("A@Example.com ")), flashsale.EmailBucket(flashsale.NormalizeEmail("a@example.com")); a != b {
		t.Errorf("buckets of one email differ: %d, %d", a, b)
	}
}

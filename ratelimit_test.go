package flashsale

import (
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Limit
		ok   bool
	}{
		{"20/1s:60", Limit{20, time.Second, 60}, true},
		{"10/m", Limit{10, time.Minute, 10}, true},
		{"5/90s:1", Limit{5, 90 * time.Second, 1}, true},
		{"off", Limit{}, true},
		{"0", Limit{}, true},
		{"20", Limit{}, false},
		{"0/1s", Limit{}, false},
		{"20/0s", Limit{}, false},
		{"20/1s:0", Limit{}, false},
		{"x/1s", Limit{}, false},
		{"20/fortnight", Limit{}, false},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && !got.IsZero() {
			if back, err := ParseLimit(got.String()); err != nil || back != got {
				t.Errorf("ParseLimit(%q.String() = %q) = %+v, %v; want it back", tt.in, got.String(), back, err)
			}
		}
	}
}

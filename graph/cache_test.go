package graph

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// The cache holds no more bytes than its budget, evicting the least recently used entries,
// keeps nothing larger than the whole budget, and counts a replaced entry once.
func TestByteCacheIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	size := func(k, v string) int { return len(k) + len(v) }
	c := newByteCache(100, size)
	for i := range 10 {
		c.Add(ctx, fmt.Sprint(i), strings.Repeat("v", 19)) // 20 bytes each
		if c.Bytes() > 100 {
			t.Fatalf("after %d adds the cache holds %d bytes; want at most 100", i+1, c.Bytes())
		}
	}
	if got, want := c.Len(), 5; got != want {
		t.Errorf("holds %d entries, want %d", got, want)
	}
	// 5..9 are kept; reading 5 makes 6 the least recently used.
	if _, ok := c.Get(ctx, "5"); !ok {
		t.Fatal("entry 5 was evicted; want the five latest kept")
	}
	c.Add(ctx, "x", strings.Repeat("v", 19))
	if c.Contains("6") || !c.Contains("5") {
		t.Errorf("after reading 5 and adding one more: 5 kept %v, 6 kept %v; want 5 kept, 6 evicted", c.Contains("5"), c.Contains("6"))
	}
	c.Add(ctx, "x", strings.Repeat("v", 39)) // replaced: 40 bytes now, not 60
	if got, want := c.Bytes(), 100; got > want || c.Len() != 4 {
		t.Errorf("after replacing an entry with a larger one: %d bytes in %d entries; want at most %d in 4", got, c.Len(), want)
	}
	c.Add(ctx, "huge", strings.Repeat("v", 100))
	if c.Contains("huge") || c.Len() == 0 {
		t.Errorf("an entry larger than the budget: kept %v, %d entries left; want it refused and the rest kept", c.Contains("huge"), c.Len())
	}
}

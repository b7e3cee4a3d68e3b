package flashsale

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

func TestIDCarriesBucketAndTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 6, 1, 12, 0, 0, 123_000_000, time.UTC)
	for _, bucket := range []int{0, 1, 511, Buckets - 1} {
		id := newID(bucket, at)
		if id <= 0 {
			t.Fatalf("newID(%d) = %d, want positive", bucket, id)
		}
		if got := bucketOf(id); got != bucket {
			t.Errorf("bucketOf(newID(%d)) = %d", bucket, got)
		}
		if got := IDTime(id); !got.Equal(at) {
			t.Errorf("IDTime(newID(%d, %v)) = %v", bucket, at, got)
		}
	}
	// A bucket outside the range wraps rather than spilling into the time bits.
	if got := bucketOf(newID(Buckets+3, at)); got != 3 {
		t.Errorf("bucketOf(newID(Buckets+3)) = %d, want 3", got)
	}
	if got := IDTime(newID(Buckets+3, at)); !got.Equal(at) {
		t.Errorf("IDTime of a wrapped bucket = %v, want %v", got, at)
	}
}

// Not parallel: the sequence is shared by every id the process makes, so ids made by other
// tests meanwhile would use up the 4,096.
func TestIDsSortByTimeAndDifferWithinAMillisecond(t *testing.T) {
	at := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	if a, b := newID(Buckets-1, at), newID(0, at.Add(time.Millisecond)); a >= b {
		t.Errorf("an id a millisecond later sorts first: %d >= %d", a, b)
	}
	seen := make(map[int64]bool, 1<<12)
	for range 1 << 12 { // one process gives 4,096 distinct ids per millisecond and bucket
		id := newID(7, at)
		if seen[id] {
			t.Fatalf("id %d repeated within 4,096 ids of one millisecond and bucket", id)
		}
		seen[id] = true
	}
}

func TestOrderIDLivesInItsBuyersBucket(t *testing.T) {
	t.Parallel()
	for _, bucket := range []int{0, 42, Buckets - 1} {
		buyer := NewUserID(bucket)
		if got := NewOrderID(buyer).Bucket(); got != bucket {
			t.Errorf("order of a buyer in bucket %d is in bucket %d", bucket, got)
		}
	}
}

func TestIDTextRoundTrip(t *testing.T) {
	t.Parallel()
	u, p, s, o := NewUserID(3), NewProductID(4), NewSaleID(5), NewOrderID(NewUserID(6))
	if got, err := ParseUserID(u.String()); err != nil || got != u {
		t.Errorf("ParseUserID(%q) = %v, %v", u, got, err)
	}
	if got, err := ParseProductID(p.String()); err != nil || got != p {
		t.Errorf("ParseProductID(%q) = %v, %v", p, got, err)
	}
	if got, err := ParseSaleID(s.String()); err != nil || got != s {
		t.Errorf("ParseSaleID(%q) = %v, %v", s, got, err)
	}
	if got, err := ParseOrderID(o.String()); err != nil || got != o {
		t.Errorf("ParseOrderID(%q) = %v, %v", o, got, err)
	}
	var buf bytes.Buffer
	o.MarshalGQL(&buf)
	if want := strconv.Quote(o.String()); buf.String() != want {
		t.Errorf("MarshalGQL = %s, want %s", buf.String(), want)
	}
	var back OrderID
	if err := back.UnmarshalGQL(o.String()); err != nil || back != o {
		t.Errorf("UnmarshalGQL(%q) = %v, %v", o, back, err)
	}
}

func TestMalformedIDsAreBadInput(t *testing.T) {
	t.Parallel()
	order := NewOrderID(NewUserID(1)).String()
	for _, s := range []string{
		"", "ord_", "ord_abc", "ord_-5", "ord_0", "ord_99999999999999999999", "ord 12", "12",
		"usr" + order[3:], // another type's id
		"ord_12\x00",
	} {
		if _, err := ParseOrderID(s); ErrorCode(err) != EINVALID {
			t.Errorf("ParseOrderID(%q): err = %v, want %s", s, err, EINVALID)
		}
	}
	var id OrderID
	if err := id.UnmarshalGQL(12); ErrorCode(err) != EINVALID {
		t.Errorf("UnmarshalGQL(12): err = %v, want %s", err, EINVALID)
	}
	long := "ord_" + string(bytes.Repeat([]byte("x"), 500))
	if _, err := ParseOrderID(long); err == nil || len(ErrorMessage(err)) > 100 {
		t.Errorf("ParseOrderID of a long string: message %q, want a short one", ErrorMessage(err))
	}
}

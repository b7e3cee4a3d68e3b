package flashsale

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Buckets is the number of logical buckets rows are spread over. Buckets, not shards, are what
// an id carries: a fixed table assigns buckets to shards, so adding a shard moves whole buckets
// and leaves every id valid.
const Buckets = 1024

// idEpoch is the zero of the millisecond clock inside ids; 41 bits of milliseconds last until 2094.
var idEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// An id is 63 bits: 41 bits of milliseconds since idEpoch, 10 bits of bucket, 12 bits of
// sequence. Ids therefore sort by creation time, which gives lists a stable order across
// shards, and a lookup by id goes straight to the bucket's shard with no scatter.
func newID(bucket int, now time.Time) int64 {
	ms := now.UnixMilli() - idEpoch
	return ms<<22 | int64(bucket&(Buckets-1))<<12 | int64(idSequence.Add(1)&(1<<12-1))
}

// idSequence fills an id's low 12 bits. It is a counter, not random bits: rows written for one
// owner in the same millisecond share a bucket, and a few dozen random 12-bit values would
// likely repeat (the birthday bound). A counter gives one process 4,096 distinct ids per
// millisecond and bucket, and its random start keeps processes apart.
var idSequence = func() *atomic.Uint64 {
	var s atomic.Uint64
	s.Store(rand.Uint64())
	return &s
}()

func bucketOf(id int64) int { return int(id>>12) & (Buckets - 1) }

// IDTime returns when an id was made, to the millisecond.
func IDTime(id int64) time.Time { return time.UnixMilli(id>>22 + idEpoch).UTC() }

// RandomBucket picks a bucket for rows that have no owner to follow (products, flash sales).
func RandomBucket() int { return rand.IntN(Buckets) }

func formatID(prefix string, id int64) string { return prefix + "_" + strconv.FormatInt(id, 10) }

// parseID reads "<prefix>_<digits>". A malformed id or one of another type is BAD_USER_INPUT.
func parseID(prefix, s string) (int64, error) {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok {
		return 0, Errorf(EINVALID, "%q is not a valid %s id", truncate(s, 40), prefixNames[prefix])
	}
	v, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || v <= 0 {
		return 0, Errorf(EINVALID, "%q is not a valid %s id", truncate(s, 40), prefixNames[prefix])
	}
	return v, nil
}

var prefixNames = map[string]string{"usr": "user", "prd": "product", "sal": "flash sale", "ord": "order", "ntf": "notification"}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func marshalID(w io.Writer, prefix string, id int64) { fmt.Fprintf(w, "%q", formatID(prefix, id)) }

func unmarshalID(prefix string, v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, Errorf(EINVALID, "an id must be a string")
	}
	return parseID(prefix, s)
}

// UserID identifies a user; its bucket is derived from the user's email.
type UserID int64

// NewUserID returns a fresh id in the bucket.
func NewUserID(bucket int) UserID { return UserID(newID(bucket, time.Now())) }

// ParseUserID reads an id as String writes it.
func ParseUserID(s string) (UserID, error) { v, err := parseID("usr", s); return UserID(v), err }

// Bucket returns the bucket the user's rows live in.
func (id UserID) Bucket() int { return bucketOf(int64(id)) }

// String returns the public form of the id, "usr_<n>".
func (id UserID) String() string { return formatID("usr", int64(id)) }

// MarshalGQL writes the id as a GraphQL ID.
func (id UserID) MarshalGQL(w io.Writer) { marshalID(w, "usr", int64(id)) }

// UnmarshalGQL reads a GraphQL ID.
func (id *UserID) UnmarshalGQL(v any) error {
	n, err := unmarshalID("usr", v)
	*id = UserID(n)
	return err
}

// ProductID identifies a product; products are spread over random buckets.
type ProductID int64

// NewProductID returns a fresh id in the bucket.
func NewProductID(bucket int) ProductID { return ProductID(newID(bucket, time.Now())) }

// ParseProductID reads an id as String writes it.
func ParseProductID(s string) (ProductID, error) {
	v, err := parseID("prd", s)
	return ProductID(v), err
}

// Bucket returns the bucket the product lives in.
func (id ProductID) Bucket() int { return bucketOf(int64(id)) }

// String returns the public form of the id, "prd_<n>".
func (id ProductID) String() string { return formatID("prd", int64(id)) }

// MarshalGQL writes the id as a GraphQL ID.
func (id ProductID) MarshalGQL(w io.Writer) { marshalID(w, "prd", int64(id)) }

// UnmarshalGQL reads a GraphQL ID.
func (id *ProductID) UnmarshalGQL(v any) error {
	n, err := unmarshalID("prd", v)
	*id = ProductID(n)
	return err
}

// SaleID identifies a flash sale; sales are spread over random buckets.
type SaleID int64

// NewSaleID returns a fresh id in the bucket.
func NewSaleID(bucket int) SaleID { return SaleID(newID(bucket, time.Now())) }

// ParseSaleID reads an id as String writes it.
func ParseSaleID(s string) (SaleID, error) { v, err := parseID("sal", s); return SaleID(v), err }

// Bucket returns the bucket the sale lives in.
func (id SaleID) Bucket() int { return bucketOf(int64(id)) }

// String returns the public form of the id, "sal_<n>".
func (id SaleID) String() string { return formatID("sal", int64(id)) }

// MarshalGQL writes the id as a GraphQL ID.
func (id SaleID) MarshalGQL(w io.Writer) { marshalID(w, "sal", int64(id)) }

// UnmarshalGQL reads a GraphQL ID.
func (id *SaleID) UnmarshalGQL(v any) error {
	n, err := unmarshalID("sal", v)
	*id = SaleID(n)
	return err
}

// OrderID identifies an order. An order lives with its buyer, so its bucket is the buyer's.
type OrderID int64

// NewOrderID returns a fresh id in the buyer's bucket.
func NewOrderID(buyer UserID) OrderID { return OrderID(newID(buyer.Bucket(), time.Now())) }

// ParseOrderID reads an id as String writes it.
func ParseOrderID(s string) (OrderID, error) { v, err := parseID("ord", s); return OrderID(v), err }

// Bucket returns the bucket the order (and its buyer) live in.
func (id OrderID) Bucket() int { return bucketOf(int64(id)) }

// String returns the public form of the id, "ord_<n>".
func (id OrderID) String() string { return formatID("ord", int64(id)) }

// MarshalGQL writes the id as a GraphQL ID.
func (id OrderID) MarshalGQL(w io.Writer) { marshalID(w, "ord", int64(id)) }

// UnmarshalGQL reads a GraphQL ID.
func (id *OrderID) UnmarshalGQL(v any) error {
	n, err := unmarshalID("ord", v)
	*id = OrderID(n)
	return err
}

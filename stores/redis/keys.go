package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flashsale/flashsale"
)

// poolKeys are the Redis keys of one pool:
//
//	<prefix>{<pool>}:meta      hash: quantity, starts_ms, ends_ms, limit, gen, seq
//	<prefix>{<pool>}:stock     string: units remaining
//	<prefix>{<pool>}:holds     hash: order id -> "qty|user id|unix ms|seq|idempotency key"
//	<prefix>{<pool>}:bought    hash: user id -> units that user holds now
//	<prefix>{<pool>}:idem      hash: "user id|idempotency key" -> order id
//	<prefix>{<pool>}:attempts  string: reservations asked for, granted or not
//
// They share the hash tag {<pool>}, so a script that touches all of them runs on one Redis
// Cluster node. Ids are stored as their int64 decimal; Lua never turns them into numbers,
// since its doubles cannot hold 63-bit ids exactly.
type poolKeys struct {
	meta, stock, holds, bought, idem, attempts string
}

func newPoolKeys(prefix string, pool flashsale.PoolKey) poolKeys {
	base := prefix + "{" + string(pool) + "}:"
	return poolKeys{
		meta:     base + "meta",
		stock:    base + "stock",
		holds:    base + "holds",
		bought:   base + "bought",
		idem:     base + "idem",
		attempts: base + "attempts",
	}
}

// all returns the keys in the order every script takes them as KEYS.
func (k poolKeys) all() []string {
	return []string{k.meta, k.stock, k.holds, k.bought, k.idem, k.attempts}
}

// unixMs returns t in Unix milliseconds, and 0 for the zero time, which the scripts read as
// "no bound" (time.Time{}.UnixMilli() is a large negative number, not 0).
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func formatID[T ~int64](id T) string { return strconv.FormatInt(int64(id), 10) }

// holdHead is the start of a hold as the holds hash stores it, "qty|user id|unix ms"; the
// reservation script appends "|seq|idempotency key" once it has numbered the reservation.
func holdHead(h flashsale.Hold) string {
	return fmt.Sprintf("%d|%d|%d", h.Quantity, h.UserID, unixMs(h.At))
}

// holdValue is a whole hold as the holds hash stores it. The idempotency key comes last
// because it may itself contain "|"; keeping it makes Holds return everything Load needs.
func holdValue(h flashsale.Hold) string {
	return fmt.Sprintf("%s|%d|%s", holdHead(h), h.Seq, h.IdempotencyKey)
}

// parseHold reads a holds hash entry written by holdValue or the reservation script.
func parseHold(order, value string) (flashsale.Hold, error) {
	id, err := strconv.ParseInt(order, 10, 64)
	parts := strings.SplitN(value, "|", 5)
	if err != nil || len(parts) < 5 {
		return flashsale.Hold{}, fmt.Errorf("malformed hold %q: %q", order, value)
	}
	qty, err1 := strconv.Atoi(parts[0])
	user, err2 := strconv.ParseInt(parts[1], 10, 64)
	ms, err3 := strconv.ParseInt(parts[2], 10, 64)
	seq, err4 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return flashsale.Hold{}, fmt.Errorf("malformed hold %q: %q", order, value)
	}
	h := flashsale.Hold{OrderID: flashsale.OrderID(id), UserID: flashsale.UserID(user), Quantity: qty,
		Seq: seq, IdempotencyKey: parts[4]}
	if ms != 0 {
		h.At = time.UnixMilli(ms).UTC()
	}
	return h, nil
}

// idemField is a buyer's idempotency key as the idem hash stores it, or "" for no key. The
// user id is digits only, so the first "|" always ends it.
func idemField(user flashsale.UserID, key string) string {
	if key == "" {
		return ""
	}
	return formatID(user) + "|" + key
}

package redis

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flashsale/flashsale"
)

// stockEvent is a stock change as it travels over pub/sub.
type stockEvent struct {
	Pool      flashsale.PoolKey `json:"pool"`
	Remaining int               `json:"remaining"`
	At        time.Time         `json:"at"` // RFC 3339 with nanoseconds, as time.Time encodes
}

func encodeEvent(pool flashsale.PoolKey, remaining int, at time.Time) (string, error) {
	b, err := json.Marshal(stockEvent{Pool: pool, Remaining: remaining, At: at.UTC()})
	return string(b), err
}

func decodeEvent(payload string) (stockEvent, error) {
	var e stockEvent
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		return e, fmt.Errorf("malformed stock event %q: %w", payload, err)
	}
	return e, nil
}

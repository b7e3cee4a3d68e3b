package analytics

import (
	"encoding/json"

	"github.com/flashsale/flashsale"
)

// Decode returns the order events encoded in values, in order. A value that does not decode
// is left out after skip is told of it (with its index): it never will decode, and failing
// its batch would only hold back the others.
func Decode(values [][]byte, skip func(i int, err error)) []flashsale.OrderEvent {
	events := make([]flashsale.OrderEvent, 0, len(values))
	for i, v := range values {
		var e flashsale.OrderEvent
		if err := json.Unmarshal(v, &e); err != nil {
			skip(i, err)
			continue
		}
		events = append(events, e)
	}
	return events
}

package loadgen

import (
	"math"
	"slices"
	"time"
)

// attempt is the outcome of one placeFlashSaleOrder call.
type attempt struct {
	done    bool // false for attempts never made (the run was canceled)
	buyer   int
	latency time.Duration
	at      time.Time // when the answer came
	code    string    // "" when accepted, else the rejection's code
	orderID string    // the accepted order's id
	units   int       // the accepted order's quantity
}

// acceptedOrder is an order the API accepted during the burst.
type acceptedOrder struct {
	buyer int
	id    string
	units int
}

// burstSummary is what the attempts add up to, before anything is checked through the API.
type burstSummary struct {
	attempts      int
	accepted      int
	acceptedUnits int
	rejections    map[string]int
	p50, p95, p99 time.Duration
	// acceptedP50 and acceptedP99 are the latencies of the accepted attempts alone: the
	// ones that wrote an order, rather than being refused from memory.
	acceptedP50, acceptedP99 time.Duration
	max                      time.Duration
	// overLimit counts buyers granted more units than the per-user limit.
	overLimit int
	// duplicates counts accepted answers that repeated an order id an earlier attempt (with
	// another idempotency key) had already been given.
	duplicates   int
	lastAccepted time.Time
	orders       []acceptedOrder
}

// summarize adds up the attempts that were made.
func summarize(atts []attempt, perUserLimit int) burstSummary {
	s := burstSummary{rejections: map[string]int{}}
	lat := make([]time.Duration, 0, len(atts))
	var acceptedLat []time.Duration
	perBuyer := map[int]int{}
	seen := map[string]bool{}
	for _, a := range atts {
		if !a.done {
			continue
		}
		s.attempts++
		lat = append(lat, a.latency)
		if a.code != "" {
			s.rejections[a.code]++
			continue
		}
		s.accepted++
		acceptedLat = append(acceptedLat, a.latency)
		if a.at.After(s.lastAccepted) {
			s.lastAccepted = a.at
		}
		if seen[a.orderID] {
			s.duplicates++
			continue
		}
		seen[a.orderID] = true
		s.acceptedUnits += a.units
		perBuyer[a.buyer] += a.units
		s.orders = append(s.orders, acceptedOrder{buyer: a.buyer, id: a.orderID, units: a.units})
	}
	for _, units := range perBuyer {
		if units > perUserLimit {
			s.overLimit++
		}
	}
	slices.Sort(lat)
	s.p50, s.p95, s.p99 = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
	slices.Sort(acceptedLat)
	s.acceptedP50, s.acceptedP99 = percentile(acceptedLat, 50), percentile(acceptedLat, 99)
	if len(lat) > 0 {
		s.max = lat[len(lat)-1]
	}
	return s
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank method:
// the smallest value with at least p% of the values at or below it. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms is d in milliseconds, rounded to microseconds for a readable JSON figure.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// perSecond is n over d, 0 for no time.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// seconds is d in seconds, to the millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// SlowOver is the latency past which an attempt counts in SlowAttempts: make bench's p99
// target.
const SlowOver = 50 * time.Millisecond

// FirstWave is how long the burst's first wave lasts: every worker's first attempt leaves
// at once, and the sale's first units answer within it.
const FirstWave = 100 * time.Millisecond

// SlowAttempts counts the attempts slower than SlowOver by when they began: in the burst's
// first 100 ms, later while units remained (before the last accepted answer), or after the
// sell-out. A p99 over the target made of the first wave is the sale's opening stampede; one
// made after the sell-out is the refusals'.
type SlowAttempts struct {
	OverMs       float64 `json:"over_ms"`
	FirstWave    int     `json:"first_wave"`
	WhileSelling int     `json:"while_selling"`
	AfterSellOut int     `json:"after_sell_out"`
}

func slowAttempts(atts []attempt, start, lastAccepted time.Time) SlowAttempts {
	s := SlowAttempts{OverMs: ms(SlowOver)}
	for _, a := range atts {
		if !a.done || a.latency <= SlowOver {
			continue
		}
		switch began := a.at.Add(-a.latency); {
		case began.Before(start.Add(FirstWave)):
			s.FirstWave++
		case began.Before(lastAccepted):
			s.WhileSelling++
		default:
			s.AfterSellOut++
		}
	}
	return s
}

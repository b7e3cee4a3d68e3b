package bench

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale/checkout"
)

// PlacementSteps are the median and tail of each step of the orders a burst placed, read
// from the API's flashsale_order_placement_step_seconds histogram (in-process stack only):
// how long taking the units in Redis took, recording the reservation in the ledger, and
// writing the order to PostgreSQL.
// They are estimated from the histogram's buckets, as histogram_quantile does.
type PlacementSteps struct {
	Orders       uint64  `json:"orders"`
	ReserveP50Ms float64 `json:"reserve_p50_ms"`
	ReserveP99Ms float64 `json:"reserve_p99_ms"`
	RecordP50Ms  float64 `json:"record_p50_ms"`
	RecordP99Ms  float64 `json:"record_p99_ms"`
	WriteP50Ms   float64 `json:"write_p50_ms"`
	WriteP99Ms   float64 `json:"write_p99_ms"`
}

// stepCounts are one histogram's cumulative bucket counts, by upper bound, for each step.
type stepCounts map[string]bucketCounts

type bucketCounts struct {
	bounds []float64 // upper bounds in seconds, the last +Inf
	counts []uint64  // cumulative
}

// snapshotSteps reads h's buckets so far; nothing without a histogram.
func snapshotSteps(h *prometheus.HistogramVec) stepCounts {
	if h == nil {
		return nil
	}
	s := stepCounts{}
	for _, step := range []string{checkout.StepReserve, checkout.StepRecord, checkout.StepWrite} {
		var m dto.Metric
		if err := h.WithLabelValues(step).(prometheus.Metric).Write(&m); err != nil || m.Histogram == nil {
			continue
		}
		var b bucketCounts
		for _, bucket := range m.Histogram.Bucket {
			b.bounds = append(b.bounds, bucket.GetUpperBound())
			b.counts = append(b.counts, bucket.GetCumulativeCount())
		}
		b.bounds = append(b.bounds, math.Inf(1))
		b.counts = append(b.counts, m.Histogram.GetSampleCount())
		s[step] = b
	}
	return s
}

// placementSince returns the steps observed between before and s, or nil when there is no
// histogram or no order was placed.
func (s stepCounts) placementSince(before stepCounts) *PlacementSteps {
	reserve, write := s[checkout.StepReserve].minus(before[checkout.StepReserve]), s[checkout.StepWrite].minus(before[checkout.StepWrite])
	record := s[checkout.StepRecord].minus(before[checkout.StepRecord])
	if reserve.total() == 0 {
		return nil
	}
	return &PlacementSteps{
		Orders:       reserve.total(),
		ReserveP50Ms: 1000 * reserve.quantile(0.50), ReserveP99Ms: 1000 * reserve.quantile(0.99),
		RecordP50Ms: 1000 * record.quantile(0.50), RecordP99Ms: 1000 * record.quantile(0.99),
		WriteP50Ms: 1000 * write.quantile(0.50), WriteP99Ms: 1000 * write.quantile(0.99),
	}
}

func (b bucketCounts) minus(before bucketCounts) bucketCounts {
	out := bucketCounts{bounds: b.bounds, counts: make([]uint64, len(b.counts))}
	for i, c := range b.counts {
		out.counts[i] = c
		if i < len(before.counts) {
			out.counts[i] -= before.counts[i]
		}
	}
	return out
}

func (b bucketCounts) total() uint64 {
	if len(b.counts) == 0 {
		return 0
	}
	return b.counts[len(b.counts)-1]
}

// quantile interpolates linearly within the bucket that holds the q-th observation; in the
// +Inf bucket it answers the highest finite bound, as histogram_quantile does.
func (b bucketCounts) quantile(q float64) float64 {
	n := b.total()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	lower, below := 0.0, uint64(0)
	for i, c := range b.counts {
		if float64(c) >= rank {
			if math.IsInf(b.bounds[i], 1) {
				return lower
			}
			inBucket := c - below
			if inBucket == 0 {
				return b.bounds[i]
			}
			return lower + (b.bounds[i]-lower)*(rank-float64(below))/float64(inBucket)
		}
		lower, below = b.bounds[i], c
	}
	return lower
}

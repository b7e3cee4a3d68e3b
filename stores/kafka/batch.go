package kafka

// Batch mode of Consume (ConsumerConfig.BatchHandler).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
)

// handleBatch calls the batch handler until it succeeds or the batch proves poison, and
// returns how many records, from the first, may be committed: fewer than all only if ctx
// ended first. A poison batch of several records is handled again one record at a time, so
// that its poison record is skipped alone and the others are still handled.
func (c *consumer) handleBatch(ctx context.Context, recs []*kgo.Record) int {
	msgs := make([]Message, len(recs))
	for i, r := range recs {
		msgs[i] = fromRecord(r)
	}
	log := c.log.With("records", len(recs), "partition", recs[0].Partition, "offset", recs[0].Offset)
	poisoned := 0
	for attempt := 1; ; attempt++ {
		err := c.cfg.BatchHandler(ctx, msgs)
		if err == nil {
			return len(recs)
		}
		if ctx.Err() != nil {
			log.Info("handler stopped; batch left uncommitted", "err", err)
			return 0
		}
		if errors.Is(err, ErrPoison) {
			poisoned++
			if poisoned >= c.cfg.PoisonAttempts {
				if len(recs) == 1 {
					log.Error("skipping poison record", "key", string(recs[0].Key), "attempts", attempt, "err", err)
					return 1
				}
				log.Warn("batch failed as poison; handling its records one at a time", "attempts", attempt, "err", err)
				return c.handleOneByOne(ctx, recs)
			}
		}
		d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
		log.Warn("batch handler failed; retrying", "attempt", attempt, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return 0
		}
	}
}

// handleOneByOne hands each record to the batch handler alone, in order, and returns how
// many were handled (or skipped as poison) before ctx ended.
func (c *consumer) handleOneByOne(ctx context.Context, recs []*kgo.Record) int {
	for i := range recs {
		if c.handleBatch(ctx, recs[i:i+1]) == 0 {
			return i
		}
	}
	return len(recs)
}

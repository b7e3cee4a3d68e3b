package kafka

// Batch mode of Consume (ConsumerConfig.BatchHandler).

import (
	"context"
	"errors"
	"sync"

	kafkago "github.com/segmentio/kafka-go"
)

// runBatches fetches, handles and commits batches of records until ctx ends.
//
// A goroutine moves fetched records into a buffer of MaxBatch while the handler works, so
// that the next batch can take at once, without waiting, what arrived meanwhile: the reader
// itself only offers a blocking fetch. Records in that buffer are no longer subject to the
// reader's own rebalance check, so after a rebalance a few may be handled here although
// their partition moved to another member; that member handles them too, which
// at-least-once allows, and a commit of ours there only moves the group's offset over
// records that were handled.
func (c *consumer) runBatches(ctx context.Context) {
	hctx, stop := drainContext(ctx, c.cfg.DrainTimeout) // the handler's: it outlives ctx by DrainTimeout
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	fetched := make(chan kafkago.Message, c.cfg.MaxBatch)
	var wg sync.WaitGroup
	wg.Go(func() { c.prefetch(ctx, fetched) })
	// Consume closes the reader once this returns: the prefetcher must be out of it first.
	defer wg.Wait()
	defer cancel()
	for ctx.Err() == nil {
		batch, ok := nextBatch(ctx, fetched, c.cfg.MaxBatch)
		if !ok {
			return
		}
		handled := c.handleBatch(hctx, batch)
		c.commit(ctx, batch[:handled])
		if handled < len(batch) {
			return
		}
	}
}

// prefetch moves records from the reader to fetched until ctx ends.
func (c *consumer) prefetch(ctx context.Context, fetched chan<- kafkago.Message) {
	for {
		km, ok := c.fetch(ctx)
		if !ok {
			return
		}
		select {
		case fetched <- km:
		case <-ctx.Done():
			return
		}
	}
}

// nextBatch waits for a record and returns it with those fetched behind it, up to limit; false
// means ctx ended first.
func nextBatch(ctx context.Context, fetched <-chan kafkago.Message, limit int) ([]kafkago.Message, bool) {
	var batch []kafkago.Message
	select {
	case km := <-fetched:
		batch = append(batch, km)
	case <-ctx.Done():
		return nil, false
	}
	for len(batch) < limit {
		select {
		case km := <-fetched:
			batch = append(batch, km)
		default:
			return batch, true
		}
	}
	return batch, true
}

// handleBatch calls the batch handler until it succeeds or the batch proves poison, and
// returns how many records, from the first, may be committed: fewer than all only if ctx
// ended first. A poison batch of several records is handled again one record at a time, so
// that its poison record is skipped alone and the others are still handled.
func (c *consumer) handleBatch(ctx context.Context, kms []kafkago.Message) int {
	msgs := make([]Message, len(kms))
	for i, km := range kms {
		msgs[i] = fromKafka(km)
	}
	log := c.log.With("records", len(kms), "partition", kms[0].Partition, "offset", kms[0].Offset)
	poisoned := 0
	for attempt := 1; ; attempt++ {
		err := c.cfg.BatchHandler(ctx, msgs)
		if err == nil {
			return len(kms)
		}
		if ctx.Err() != nil {
			log.Info("handler stopped; batch left uncommitted", "err", err)
			return 0
		}
		if errors.Is(err, ErrPoison) {
			poisoned++
			if poisoned >= c.cfg.PoisonAttempts {
				if len(kms) == 1 {
					log.Error("skipping poison record", "key", string(kms[0].Key), "attempts", attempt, "err", err)
					return 1
				}
				log.Warn("batch failed as poison; handling its records one at a time", "attempts", attempt, "err", err)
				return c.handleOneByOne(ctx, kms)
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
func (c *consumer) handleOneByOne(ctx context.Context, kms []kafkago.Message) int {
	for i := range kms {
		if c.handleBatch(ctx, kms[i:i+1]) == 0 {
			return i
		}
	}
	return len(kms)
}

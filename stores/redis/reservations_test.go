package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// roundTrips counts a client's commands sent alone and its pipelines.
type roundTrips struct{ alone, pipelines, piped atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.alone.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.pipelines.Add(1)
		r.piped.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Reservations made at once share pipelines, each script still atomic on its own: the
// stock is sold exactly, and a script Redis forgot (SCRIPT FLUSH, as after a restart) is
// loaded again from inside a pipeline.
func TestConcurrentReservationsSharePipelines(t *testing.T) {
	t.Parallel()
	inv, c, _ := newInventory(t)
	counted := &roundTrips{}
	c.AddHook(counted)
	ctx := context.Background()
	const units, attempts = 100, 600
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: units, PerUserLimit: 1})
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	counted.alone.Store(0)

	var ids orders
	var sold, soldOut atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			h := flashsale.Hold{OrderID: ids.next(), UserID: userID(int64(i)), Quantity: 1, IdempotencyKey: fmt.Sprint("k", i)}
			<-start
			_, err := inv.Reserve(ctx, pool, h)
			switch flashsale.ErrorCode(err) {
			case "":
				sold.Add(1)
			case flashsale.ESOLDOUT:
				soldOut.Add(1)
			default:
				t.Errorf("Reserve: %v; want a hold or SOLD_OUT", err)
			}
		})
	}
	close(start)
	wg.Wait()

	if sold.Load() != units || soldOut.Load() != attempts-units {
		t.Errorf("%d sold, %d refused; want %d and %d", sold.Load(), soldOut.Load(), units, attempts-units)
	}
	checkConserved(t, inv, c, pool, units)
	trips := counted.alone.Load() + counted.pipelines.Load()
	if counted.pipelines.Load() == 0 || trips >= attempts {
		t.Errorf("%d reservations took %d round trips (%d pipelines of %d scripts, %d alone); want them to share pipelines",
			attempts, trips, counted.pipelines.Load(), counted.piped.Load(), counted.alone.Load())
	}
	t.Logf("%d reservations: %d pipelines of %d scripts, %d commands alone", attempts, counted.pipelines.Load(), counted.piped.Load(), counted.alone.Load())
}

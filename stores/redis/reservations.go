package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/combine"
)

// Concurrent reservations share round trips: a reservation that finds fewer than
// reserveWriters pipelines in flight goes at once, alone; those that arrive meanwhile go
// together in the next pipeline, up to reserveBatch of them. In a sale's first second every
// buyer's script is its own write and read on the API's side and on Redis's, a tenth of a
// millisecond of system calls on the two of them; in a pipeline of fifty, one of each. Redis
// still runs the scripts one after another, each atomic, so nothing about their outcome
// changes.
const (
	reserveBatch   = 128
	reserveWriters = 4
)

// reserveCall is one reservation's script arguments.
type reserveCall struct {
	keys []string
	args []any
}

func (inv *Inventory) newReservations() *combine.Combiner[reserveCall, any] {
	return combine.New(1, reserveBatch, reserveWriters, inv.reserveMany, nil)
}

// reserveMany runs a batch of reservation scripts in one pipeline and returns each one's
// reply. A script Redis no longer has cached (it restarted, say) is run again alone, which
// loads it.
func (inv *Inventory) reserveMany(ctx context.Context, _ int, calls []reserveCall) ([]combine.Outcome[any], error) {
	if len(calls) == 1 { // no pipeline's bookkeeping for a reservation alone
		v, err := inv.scripts.reserve.Run(ctx, inv.client, calls[0].keys, calls[0].args...).Result()
		return []combine.Outcome[any]{{Val: v, Err: err}}, nil
	}
	pipe := inv.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = inv.scripts.reserve.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command holds its own reply or error
	outs := make([]combine.Outcome[any], len(calls))
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			v, err = inv.scripts.reserve.Run(ctx, inv.client, calls[i].keys, calls[i].args...).Result()
		}
		outs[i] = combine.Outcome[any]{Val: v, Err: err}
	}
	return outs, nil
}

package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A pool's slot moves to another master in the middle of a sale, its keys going over one by
// one while buyers buy, each buyer resending its reservation once as if the first answer had
// been lost. Every buyer is answered with a hold or SOLD_OUT, never an error; the pool sells
// exactly its stock, no resent reservation takes units twice, and the pool ends on the new
// master.
func TestReserveWhileSlotMoves(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	client := cluster.Client(t)
	inv := NewInventory(client, "")
	ctx := context.Background()
	const units, buyers = 600, 8
	pool := flashsale.PoolKey("sale:moving")
	mustLoad(t, inv, pool, flashsale.PoolTerms{Quantity: units})
	slot, err := client.ClusterKeySlot(ctx, inv.keys(pool).stock).Result()
	if err != nil {
		t.Fatal(err)
	}

	var (
		ids     orders
		mu      sync.Mutex
		won     = map[flashsale.OrderID]int64{} // order -> seq
		codes   = map[string]int{}
		sold    atomic.Int64
		errs    []error
		wg      sync.WaitGroup
		started = make(chan struct{})
	)
	for b := range buyers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if b == 0 && i == 20 {
					close(started) // the move starts once the sale is under way
				}
				h := flashsale.Hold{OrderID: ids.next(), UserID: userID(int64(b*100000 + i)), Quantity: 1,
					IdempotencyKey: fmt.Sprint("k", b, "-", i)}
				res, err := inv.Reserve(ctx, pool, h)
				var again flashsale.Reservation
				if err == nil {
					again, err = inv.Reserve(ctx, pool, h) // the first reply "lost"
				}
				mu.Lock()
				codes[flashsale.ErrorCode(err)]++
				switch {
				case err == nil && (again.Duplicate || again.Version.Seq != res.Version.Seq):
					errs = append(errs, fmt.Errorf("resent %+v = %+v; first answer %+v", h, again, res))
				case err == nil:
					won[h.OrderID] = res.Version.Seq
				case flashsale.ErrorCode(err) != flashsale.ESOLDOUT:
					errs = append(errs, fmt.Errorf("Reserve(%+v) = %w", h, err))
				}
				mu.Unlock()
				if err != nil {
					return // sold out, or failed (reported)
				}
				sold.Add(1)
				time.Sleep(2 * time.Millisecond) // the sale lasts through the move
			}
		})
	}
	<-started
	from, to := cluster.MoveSlot(t, int(slot), 40*time.Millisecond)
	if left := units - sold.Load(); left == 0 {
		t.Errorf("the sale sold out before the slot finished moving; it proves nothing")
	}
	wg.Wait()

	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("slot %d moved from %s to %s; outcomes %v", slot, from, to, codes)
	if len(won) != units {
		t.Errorf("%d holds granted; want exactly the %d units", len(won), units)
	}
	holds := checkConserved(t, inv, client, pool, units)
	if len(holds) != units {
		t.Errorf("%d holds in the pool; want %d", len(holds), units)
	}
	for _, h := range holds {
		if seq, ok := won[h.OrderID]; !ok || seq != h.Seq {
			t.Errorf("hold %+v was not granted as such (granted seq %d, %v)", h, seq, ok)
		}
	}
	owner := cluster.Node(t, to)
	if n, err := owner.ClusterCountKeysInSlot(ctx, int(slot)).Result(); err != nil || n == 0 {
		t.Errorf("the new master %s holds %d keys of slot %d (%v); want the pool's", to, n, slot, err)
	}
}

// Subscribers counts the subscribers of a channel on every node of a cluster, as it does on
// one server.
func TestSubscribersCountedOnEveryNode(t *testing.T) {
	t.Parallel()
	cluster := testenv.RedisCluster(t)
	ctx := context.Background()
	channel := testenv.Name() + ":stock:{sale:1}"
	for _, addr := range cluster.Addrs { // one subscriber held on each node
		ps := cluster.Node(t, addr).Subscribe(ctx, channel)
		t.Cleanup(func() { ps.Close() })
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatalf("subscribe on %s: %v", addr, err)
		}
	}
	client := cluster.Client(t)
	if n, err := Subscribers(ctx, client, channel); err != nil || n != int64(len(cluster.Addrs)) {
		t.Errorf("Subscribers on the cluster = %d, %v; want %d", n, err, len(cluster.Addrs))
	}

	single, _ := testenv.Redis(t)
	ps := single.Subscribe(ctx, channel)
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := Subscribers(ctx, single, channel); err != nil || n != 1 {
		t.Errorf("Subscribers on one server = %d, %v; want 1", n, err)
	}
}

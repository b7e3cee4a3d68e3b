package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const ordersQuery = `query($first: Int, $after: String) {
  me { orders(first: $first, after: $after) {
    edges { node { id status quantity flashSale { id } } }
    pageInfo { hasNextPage endCursor }
  } }
}`

// Order pages read per buyer: the run's buyers are new, so their orders are the run's own.
const (
	ordersPageSize = 10
	maxOrderPages  = 20
)

// orderView is one of a buyer's orders as me.orders shows it.
type orderView struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Quantity  int    `json:"quantity"`
	FlashSale *struct {
		ID string `json:"id"`
	} `json:"flashSale"`
}

// buyerOrders reads the buyer's orders, page by page, for at most maxOrderPages pages.
func buyerOrders(ctx context.Context, c *Client, token string) ([]orderView, error) {
	var all []orderView
	var after any // nil: the first page
	for range maxOrderPages {
		var out struct {
			Me *struct {
				Orders struct {
					Edges []struct {
						Node orderView `json:"node"`
					} `json:"edges"`
					PageInfo struct {
						HasNextPage bool    `json:"hasNextPage"`
						EndCursor   *string `json:"endCursor"`
					} `json:"pageInfo"`
				} `json:"orders"`
			} `json:"me"`
		}
		if err := c.Do(ctx, token, ordersQuery, map[string]any{"first": ordersPageSize, "after": after}, &out); err != nil {
			return all, err
		}
		if out.Me == nil {
			return all, &Error{Code: CodeBadResponse, Message: "me is null for a signed-in buyer"}
		}
		for _, e := range out.Me.Orders.Edges {
			all = append(all, e.Node)
		}
		pi := out.Me.Orders.PageInfo
		if !pi.HasNextPage || pi.EndCursor == nil {
			break
		}
		after = *pi.EndCursor
	}
	return all, nil
}

// settled reports whether an order in the status will change no more.
func settled(status string) bool {
	return status == "PAID" || status == "CANCELLED" || status == "EXPIRED"
}

// holdsStock reports whether an order in the status counts as sold.
func holdsStock(status string) bool { return status == "PENDING" || status == "PAID" }

// tracked is what the drain knows of one accepted order.
type tracked struct {
	buyer  int
	seen   bool   // found by id at least once
	status string // last status seen
	// createdAt and paidAt are the shop's own stamps: the order's createdAt, and its
	// updatedAt once it is PAID, which is when it turned PAID. seenPaidAt is when a poll
	// first saw it PAID.
	createdAt, paidAt, seenPaidAt time.Time
}

// drainResult is what polling the accepted orders found.
type drainResult struct {
	drained bool
	// elapsed runs from the last order's creation to the last one turning PAID, both as
	// the shop stamped them; observed from the last accepted answer to the poll that saw
	// the last PAID. Undrained, both run until the drain gave up.
	elapsed, observed time.Duration
	missing           int
	unpaid            map[string]int
	queryErrors       int
}

// drainPeriod is how often the unsettled orders are polled.
const drainPeriod = 100 * time.Millisecond

// drainBatch is how many orders one poll asks for: one request of that many aliased
// order(id:) lookups (3 complexity each) rather than a request per buyer, so that watching
// the drain costs the shop a few requests a round instead of one per buyer, and does not
// slow down the very workers it is timing.
const drainBatch = 100

// drainPoll is what polling the accepted orders until they settle saw.
type drainPoll struct {
	orders      map[string]*tracked
	end         time.Time // when the polling stopped
	queryErrors int
}

// drainOrders polls the accepted orders that are not yet settled, by id as the admin,
// drainBatch to a request, PollConcurrency requests at a time and once per drainPeriod,
// until every accepted order is settled or DrainTimeout has passed since burstEnd.
func drainOrders(ctx context.Context, c *Client, cfg Config, admin string, sum burstSummary, burstEnd time.Time, progress io.Writer) drainPoll {
	orders := make(map[string]*tracked, len(sum.orders))
	for _, o := range sum.orders {
		orders[o.id] = &tracked{buyer: o.buyer}
	}
	if len(orders) == 0 {
		return drainPoll{orders: orders, end: time.Now()}
	}
	var (
		mu          sync.Mutex
		paid        atomic.Int64
		queryErrors atomic.Int64
	)
	stop := Ticker(progress, func() string {
		return fmt.Sprintf("drain: %d/%d accepted orders PAID", paid.Load(), len(orders))
	})
	deadline := burstEnd.Add(cfg.DrainTimeout)
	for ctx.Err() == nil {
		round := time.Now()
		pending := unsettledOrders(orders)
		if len(pending) == 0 {
			break
		}
		batches := (len(pending) + drainBatch - 1) / drainBatch
		ForEach(ctx, batches, cfg.PollConcurrency, func(i int) {
			ids := pending[i*drainBatch : min((i+1)*drainBatch, len(pending))]
			found, err := ordersByID(ctx, c, admin, ids)
			at := time.Now()
			if err != nil {
				queryErrors.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, o := range found {
				t := orders[o.ID]
				t.seen, t.status, t.createdAt = true, o.Status, o.CreatedAt
				if o.Status == "PAID" && t.seenPaidAt.IsZero() {
					t.paidAt, t.seenPaidAt = o.UpdatedAt, at
					paid.Add(1)
				}
			}
		})
		if time.Now().After(deadline) || !Sleep(ctx, time.Until(round.Add(drainPeriod))) {
			break
		}
	}
	stop()
	return drainPoll{orders: orders, end: time.Now(), queryErrors: int(queryErrors.Load())}
}

// unsettledOrders lists, in order, the tracked orders not yet settled.
func unsettledOrders(orders map[string]*tracked) []string {
	var list []string
	for id, t := range orders {
		if !settled(t.status) {
			list = append(list, id)
		}
	}
	slices.Sort(list)
	return list
}

// orderStatus is one order as order(id:) shows it.
type orderStatus struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ordersByID reads the orders with the ids in one request and returns those that exist.
func ordersByID(ctx context.Context, c *Client, token string, ids []string) ([]orderStatus, error) {
	var q strings.Builder
	q.WriteString("query {")
	for i, id := range ids {
		fmt.Fprintf(&q, " o%d: order(id: %s) { id status createdAt updatedAt }", i, strconv.Quote(id))
	}
	q.WriteString(" }")
	var out map[string]*orderStatus
	if err := c.Do(ctx, token, q.String(), nil, &out); err != nil {
		return nil, err
	}
	found := make([]orderStatus, 0, len(ids))
	for i, id := range ids {
		if o := out["o"+strconv.Itoa(i)]; o != nil && o.ID == id {
			found = append(found, *o)
		}
	}
	return found, nil
}

// drainOutcome adds up the tracked orders once the census has said which of them their
// buyers' orders do not list (unlisted): those are missing, and any other not PAID when
// the drain ended at end is unpaid, by its last status ("" if it was never found by id).
//
// The drain is timed by the shop's stamps, from the last order's createdAt to the last
// updatedAt of a PAID order: the polls only start once the burst is over, so what they saw
// (observed) is late by however long the burst outlasted the sell-out. The load generator
// only targets the loopback, so the stamps come from the clock it reads itself.
func drainOutcome(orders map[string]*tracked, unlisted map[string]bool, lastAccepted, end time.Time, queryErrors int) drainResult {
	d := drainResult{drained: true, queryErrors: queryErrors}
	var lastCreated, lastPaid, lastSeenPaid time.Time
	for id, t := range orders {
		if t.createdAt.After(lastCreated) {
			lastCreated = t.createdAt
		}
		switch {
		case unlisted[id]:
			d.missing++
			d.drained = false
		case t.status != "PAID":
			if d.unpaid == nil {
				d.unpaid = map[string]int{}
			}
			d.unpaid[t.status]++
			d.drained = false
		default:
			if t.paidAt.After(lastPaid) {
				lastPaid = t.paidAt
			}
			if t.seenPaidAt.After(lastSeenPaid) {
				lastSeenPaid = t.seenPaidAt
			}
		}
	}
	if !d.drained {
		d.elapsed = end.Sub(lastAccepted)
		d.observed = d.elapsed
		return d
	}
	d.elapsed = max(lastPaid.Sub(lastCreated), 0)
	d.observed = max(lastSeenPaid.Sub(lastAccepted), 0)
	return d
}

// censusResult is what every buyer's orders for the sale add up to.
type censusResult struct {
	sold           int // units in PENDING or PAID orders
	unacknowledged int // orders no accepted answer returned
	queryErrors    int
}

// census reads every buyer's orders, PollConcurrency at a time, and adds up those for the
// sale: every buyer, not only those with an accepted answer, so an order created behind a
// failed or rejected attempt is counted too. It also returns the accepted orders that their
// buyer's orders do not list.
func census(ctx context.Context, c *Client, cfg Config, buyers []buyer, saleID string, accepted []acceptedOrder, progress io.Writer) (censusResult, map[string]bool) {
	known := make(map[string]bool, len(accepted))
	for _, o := range accepted {
		known[o.id] = true
	}
	var (
		mu     sync.Mutex
		all    []orderView
		listed = map[string]int{} // order id → the buyer whose list holds it
		done   atomic.Int64
		errs   atomic.Int64
	)
	stop := Ticker(progress, func() string {
		return fmt.Sprintf("census: %d/%d buyers' orders read", done.Load(), len(buyers))
	})
	ForEach(ctx, len(buyers), cfg.PollConcurrency, func(i int) {
		list, err := buyerOrders(ctx, buyers[i].client, buyers[i].token)
		if err != nil {
			errs.Add(1)
		}
		mu.Lock()
		all = append(all, list...)
		for _, o := range list {
			listed[o.ID] = i
		}
		mu.Unlock()
		done.Add(1)
	})
	stop()
	r := tally(all, saleID, known)
	r.queryErrors = int(errs.Load())
	unlisted := map[string]bool{}
	for _, o := range accepted {
		if b, ok := listed[o.id]; !ok || b != o.buyer {
			unlisted[o.id] = true
		}
	}
	return r, unlisted
}

// tally adds up the orders for the sale.
func tally(orders []orderView, saleID string, known map[string]bool) censusResult {
	var r censusResult
	seen := map[string]bool{}
	for _, o := range orders {
		if o.FlashSale == nil || o.FlashSale.ID != saleID || seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		if holdsStock(o.Status) {
			r.sold += o.Quantity
		}
		if !known[o.ID] {
			r.unacknowledged++
		}
	}
	return r
}

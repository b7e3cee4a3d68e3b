package loadgen

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

const placeMutation = `mutation($input: PlaceFlashSaleOrderInput!) {
  placeFlashSaleOrder(input: $input) { id quantity }
}`

// placeVars are placeMutation's variables. A struct, not a map: the load generator shares
// the cores it measures, and a struct encodes in a third of the time and allocations.
type placeVars struct {
	Input placeInput `json:"input"`
}

type placeInput struct {
	FlashSaleID    string `json:"flashSaleId"`
	Quantity       int    `json:"quantity"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// burst makes cfg.Attempts placeFlashSaleOrder calls, one unit each with a fresh idempotency
// key, attempt i on behalf of buyer i mod len(buyers), cfg.Concurrency at a time. It returns
// every attempt (those never made because ctx ended are not done) and the time from the
// first call to the last answer.
func burst(ctx context.Context, c *Client, cfg Config, saleID string, buyers []buyer, progress io.Writer) ([]attempt, time.Duration) {
	atts := make([]attempt, cfg.Attempts)
	var done, accepted atomic.Int64
	start := time.Now()
	stop := Ticker(progress, func() string {
		n := done.Load()
		return fmt.Sprintf("burst: %d/%d attempts, %d accepted, %.0f/s", n, cfg.Attempts, accepted.Load(), perSecond(int(n), time.Since(start)))
	})
	keyPrefix := "lg-" + cfg.RunID + "-"
	ForEach(ctx, cfg.Attempts, cfg.Concurrency, func(i int) {
		b := i % len(buyers)
		vars := placeVars{Input: placeInput{
			FlashSaleID: saleID, Quantity: 1, IdempotencyKey: keyPrefix + strconv.Itoa(i),
		}}
		var out struct {
			PlaceFlashSaleOrder struct {
				ID       string `json:"id"`
				Quantity int    `json:"quantity"`
			} `json:"placeFlashSaleOrder"`
		}
		t0 := time.Now()
		err := buyers[b].client.Do(ctx, buyers[b].token, placeMutation, vars, &out)
		t1 := time.Now()
		a := attempt{done: true, buyer: b, latency: t1.Sub(t0), at: t1}
		switch o := out.PlaceFlashSaleOrder; {
		case ErrorCode(err) == CodeCanceled:
			return // the run is stopping; this attempt tells nothing about the shop
		case err != nil:
			a.code = ErrorCode(err)
		case o.ID == "":
			a.code = CodeBadResponse
		default:
			a.orderID, a.units = o.ID, o.Quantity
			accepted.Add(1)
		}
		atts[i] = a
		done.Add(1)
	})
	elapsed := time.Since(start)
	stop()
	return atts, elapsed
}

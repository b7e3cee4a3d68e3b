package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/stockfeed"
)

// SubscriptionsResult is how many live stock subscribers one API process holds, and how
// long after the last unit of a sale was sold the final 0 reached them.
type SubscriptionsResult struct {
	// Requested is how many subscribers were opened; Subscribers how many the API held:
	// connected, acknowledged, sent their first value, and still open at the sell-out.
	Requested   int     `json:"requested"`
	Subscribers int     `json:"subscribers"`
	ConnectS    float64 `json:"connect_s"`
	// Quantity is the units of the sale sold out under them, one per buyer.
	Quantity int `json:"quantity"`
	Sold     int `json:"sold"`
	// GotFinal counts subscribers that received remaining 0; the delays run from the moment
	// the server stamped that update (StockUpdate.at: when the order that sold the last unit
	// published the count) to its arrival at the subscriber.
	GotFinal         int     `json:"got_final"`
	FinalValueP50Ms  float64 `json:"final_value_p50_ms"`
	FinalValueP99Ms  float64 `json:"final_value_p99_ms"`
	FinalValueMaxMs  float64 `json:"final_value_max_ms"`
	UpdateIntervalMs float64 `json:"update_interval_ms"`
	FailedConnects   int     `json:"failed_connects"`
	// OrderFailures counts the sell-out's failed order attempts by code; each was retried.
	OrderFailures map[string]int `json:"order_failures"`
	FirstError    string         `json:"first_error,omitempty"`
}

const stockSubscription = `subscription($id: ID!) { flashSaleStock(flashSaleId: $id) { remaining at } }`

// Bounds of the subscription benchmark.
const (
	subscribeTimeout   = 10 * time.Second // one subscriber's dial, init and first value
	subscribeWorkers   = 32               // subscribers being opened at once
	finalValueTimeout  = 15 * time.Second // how long after the sell-out the final 0 may take
	subscriptionBuyers = 16               // orders in flight while selling out
	orderTries         = 5                // tries of one sell-out order
)

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subscriber is one open subscription.
type subscriber struct {
	conn *websocket.Conn
	// delay is how long after the server stamped the final 0 (StockUpdate.at, taken when
	// the order that sold the last unit published the count) it arrived, in nanoseconds;
	// 0 until it has. Loopback only, so the server's clock is this machine's.
	delay atomic.Int64
}

// runSubscriptions registers cfg.SubscriptionQuantity buyers, opens a sale of as many
// units, opens cfg.Subscribers subscriptions to its stock on url, sells it out one unit per
// buyer, and times the final 0's arrival at every subscriber. updatesPerSecond is the API's
// cap on updates per subscriber (0: the default), whose interval is the baseline.
func runSubscriptions(ctx context.Context, cfg Config, s *shop, url string, updatesPerSecond int, progress io.Writer) (*SubscriptionsResult, error) {
	if updatesPerSecond <= 0 {
		updatesPerSecond = stockfeed.DefaultMaxPerSecond
	}
	r := &SubscriptionsResult{
		Requested: cfg.Subscribers, Quantity: cfg.SubscriptionQuantity,
		UpdateIntervalMs: ms(time.Second / time.Duration(updatesPerSecond)),
	}
	buyers, err := s.registerBuyers(ctx, "subs", cfg.SubscriptionQuantity, 8)
	if err != nil {
		return nil, err
	}
	product, err := s.createProduct(ctx, "Live product of "+s.runID, cfg.SubscriptionQuantity)
	if err != nil {
		return nil, err
	}
	sale, err := s.createSale(ctx, product, cfg.SubscriptionQuantity, 1, time.Now().Add(-time.Minute))
	if err != nil {
		return nil, err
	}

	// The subscribers read until readCtx ends, which closes their connections.
	readCtx, closeAll := context.WithCancel(ctx)
	var readers sync.WaitGroup
	defer func() {
		closeAll()
		readers.Wait()
	}()
	wsURL := "ws" + strings.TrimPrefix(strings.TrimSuffix(url, "/"), "http") + "/query"
	httpClient := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer httpClient.CloseIdleConnections()
	subs := make([]*subscriber, cfg.Subscribers)
	var opened, failed atomic.Int64
	var errOnce sync.Once
	start := time.Now()
	stopTicker := loadgen.Ticker(progress, func() string {
		return fmt.Sprintf("subscriptions: %d/%d open (%d failed)", opened.Load(), cfg.Subscribers, failed.Load())
	})
	loadgen.ForEach(ctx, cfg.Subscribers, subscribeWorkers, func(i int) {
		sub, err := subscribeStock(readCtx, httpClient, wsURL, loadgen.Address(i), sale, cfg.SubscriptionQuantity)
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { r.FirstError = err.Error() })
			return
		}
		subs[i] = sub
		opened.Add(1)
		readers.Go(func() { sub.read(readCtx) })
	})
	stopTicker()
	r.ConnectS = seconds(time.Since(start))
	r.FailedConnects = int(failed.Load())
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Sell out: one unit per buyer. A failed order is retried with its idempotency key, as a
	// buyer's client would, so that the sale sells out whatever the API answered under the
	// fan-out's load; the failures are counted.
	var sold atomic.Int64
	var failMu sync.Mutex
	r.OrderFailures = map[string]int{}
	loadgen.ForEach(ctx, len(buyers), subscriptionBuyers, func(i int) {
		key := fmt.Sprintf("subs-%s-%d", s.runID, i)
		for range orderTries {
			_, err := s.placeOrder(ctx, buyers[i], "", sale, key)
			if err != nil {
				failMu.Lock()
				r.OrderFailures[loadgen.ErrorCode(err)]++
				failMu.Unlock()
				continue
			}
			sold.Add(1)
			return
		}
	})
	r.Sold = int(sold.Load())
	if r.Sold != cfg.SubscriptionQuantity {
		return r, fmt.Errorf("subscriptions: sold %d of %d units; failures: %v", r.Sold, cfg.SubscriptionQuantity, r.OrderFailures)
	}
	held := 0
	poll(ctx, 10*time.Millisecond, finalValueTimeout, func() bool {
		held = 0
		done := true
		for _, sub := range subs {
			if sub == nil {
				continue
			}
			held++
			if sub.delay.Load() == 0 {
				done = false
			}
		}
		return done
	})
	r.Subscribers = held
	var delays latencies
	for _, sub := range subs {
		if sub == nil {
			continue
		}
		if d := sub.delay.Load(); d != 0 {
			delays = append(delays, time.Duration(d))
		}
	}
	r.GotFinal = len(delays)
	r.FinalValueP50Ms, r.FinalValueP99Ms, r.FinalValueMaxMs = delays.percentileMs(50), delays.percentileMs(99), delays.percentileMs(100)
	fmt.Fprintf(progress, "subscriptions: %d held, %d got the final 0 (p50 %.1f ms, p99 %.1f ms after it was published)\n",
		r.Subscribers, r.GotFinal, r.FinalValueP50Ms, r.FinalValueP99Ms)
	return r, nil
}

// subscribeStock opens a graphql-transport-ws connection as the watcher at addr (each its
// own, as an ingress would forward them, for the per-address limits), subscribes to the
// sale's stock and waits for the first value, which must be want. The connection lives
// until ctx ends.
func subscribeStock(ctx context.Context, client *http.Client, wsURL, addr, sale string, want int) (*subscriber, error) {
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: client, Subprotocols: []string{"graphql-transport-ws"},
		HTTPHeader: http.Header{"X-Forwarded-For": {addr}},
	})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			conn.CloseNow()
		}
	}()
	setupCtx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	if err := wsjson.Write(setupCtx, conn, wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)}); err != nil {
		return nil, err
	}
	if _, err := expect(setupCtx, conn, "connection_ack"); err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"query": stockSubscription, "variables": map[string]any{"id": sale}})
	if err := wsjson.Write(setupCtx, conn, wsMessage{ID: "1", Type: "subscribe", Payload: payload}); err != nil {
		return nil, err
	}
	m, err := expect(setupCtx, conn, "next")
	if err != nil {
		return nil, err
	}
	if u, err := stockUpdate(m); err != nil || u.Remaining != want {
		return nil, fmt.Errorf("first value %d (%v), want %d", u.Remaining, err, want)
	}
	ok = true
	return &subscriber{conn: conn}, nil
}

// expect reads messages, answering pings, until one of the type arrives.
func expect(ctx context.Context, conn *websocket.Conn, typ string) (wsMessage, error) {
	for range 100 {
		var m wsMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return m, err
		}
		switch m.Type {
		case typ:
			return m, nil
		case "ping":
			if err := wsjson.Write(ctx, conn, wsMessage{Type: "pong"}); err != nil {
				return m, err
			}
		case "error", "connection_error", "complete":
			return m, fmt.Errorf("%s: %s", m.Type, m.Payload)
		}
	}
	return wsMessage{}, errors.New("no " + typ + " among 100 messages")
}

// read records when remaining 0 arrives, answering pings, until ctx ends.
func (s *subscriber) read(ctx context.Context) {
	defer s.conn.CloseNow()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, s.conn, &m); err != nil {
			return
		}
		switch m.Type {
		case "next":
			if u, err := stockUpdate(m); err == nil && u.Remaining == 0 && s.delay.Load() == 0 {
				// At least a nanosecond, so that 0 keeps meaning "not yet".
				s.delay.Store(max(int64(time.Since(u.At)), 1))
			}
		case "ping":
			if wsjson.Write(ctx, s.conn, wsMessage{Type: "pong"}) != nil {
				return
			}
		}
	}
}

// update is a flashSaleStock value.
type update struct {
	Remaining int       `json:"remaining"`
	At        time.Time `json:"at"`
}

// stockUpdate reads flashSaleStock from a next message.
func stockUpdate(m wsMessage) (update, error) {
	var p struct {
		Data struct {
			FlashSaleStock *update `json:"flashSaleStock"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return update{}, err
	}
	if p.Data.FlashSaleStock == nil {
		return update{}, fmt.Errorf("no stock in %s", m.Payload)
	}
	return *p.Data.FlashSaleStock, nil
}

// Package loadgen drives a running flash-sale stack through its public GraphQL API only: it
// registers buyers, opens a flash sale, fires a burst of concurrent orders at it, and then
// checks through the same API that nothing was oversold or lost. cmd/loadgen is its command
// line; cmd/bench calls Run and Floor directly.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Config says what one run does. Zero fields take the values of DefaultConfig.
type Config struct {
	// URL is the stack's base URL (or its /query URL); it must be on the loopback.
	URL           string
	AdminEmail    string
	AdminPassword string
	// Buyers is how many customers are registered for the run.
	Buyers int
	// Attempts is how many placeFlashSaleOrder calls the burst makes, spread round-robin over
	// the buyers, so one buyer may try several times.
	Attempts int
	// Concurrency is how many attempts are in flight at once; the HTTP pool is sized for it.
	Concurrency int
	// Quantity is the units the sale offers, PerUserLimit the units one buyer may take.
	Quantity     int
	PerUserLimit int
	// RegisterConcurrency bounds concurrent registrations (each costs a bcrypt hash).
	RegisterConcurrency int
	// PollConcurrency bounds the concurrent order queries after the burst.
	PollConcurrency int
	// StartDelay is how long after the sale is created it starts (rounded up to a second).
	StartDelay time.Duration
	// SaleDuration is how long the sale stays open after it starts.
	SaleDuration time.Duration
	// DrainTimeout is how long after the burst every accepted order has to show PAID.
	DrainTimeout time.Duration
	// RequestTimeout bounds one HTTP request.
	RequestTimeout time.Duration
	// Floor, when set, measures the { __typename } baseline (see Floor) after registration,
	// with Concurrency and Attempts, and reports it beside the burst.
	Floor bool
	// Shapes are the client libraries' request shapes the burst and the floor send, buyer by
	// buyer and request by request in turn (nil: DefaultShapes, Apollo Client's and urql's).
	Shapes []Shape
	// RunID makes the run's emails, names and idempotency keys unique; random when empty.
	RunID string
	// AroundBurst, when set, is called just before the burst's first attempt, and the
	// function it returns just after its last answer: cmd/bench profiles the burst alone
	// this way.
	AroundBurst func() (end func())
}

// DefaultConfig returns the defaults: 5,000 buyers making 20,000 attempts at concurrency 256
// on a sale of 1,000 units, one per buyer, against http://localhost:8080.
func DefaultConfig() Config {
	return Config{
		URL:                 "http://localhost:8080",
		AdminEmail:          "admin@example.com",
		AdminPassword:       "admin-password",
		Buyers:              5000,
		Attempts:            20000,
		Concurrency:         256,
		Quantity:            1000,
		PerUserLimit:        1,
		RegisterConcurrency: 16,
		PollConcurrency:     32,
		StartDelay:          2 * time.Second,
		SaleDuration:        10 * time.Minute,
		DrainTimeout:        30 * time.Second,
		RequestTimeout:      10 * time.Second,
	}
}

// withDefaults fills the zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.URL, d.URL)
	set(&c.AdminEmail, d.AdminEmail)
	set(&c.AdminPassword, d.AdminPassword)
	setInt(&c.Buyers, d.Buyers)
	setInt(&c.Attempts, d.Attempts)
	setInt(&c.Concurrency, d.Concurrency)
	setInt(&c.Quantity, d.Quantity)
	setInt(&c.PerUserLimit, d.PerUserLimit)
	setInt(&c.RegisterConcurrency, d.RegisterConcurrency)
	setInt(&c.PollConcurrency, d.PollConcurrency)
	setDur(&c.StartDelay, d.StartDelay)
	setDur(&c.SaleDuration, d.SaleDuration)
	setDur(&c.DrainTimeout, d.DrainTimeout)
	setDur(&c.RequestTimeout, d.RequestTimeout)
	if len(c.Shapes) == 0 {
		c.Shapes = DefaultShapes
	}
	if c.RunID == "" {
		c.RunID = newRunID()
	}
	return c
}

// validate refuses settings the run cannot work with.
func (c Config) validate() error {
	switch {
	case c.Buyers < 1, c.Attempts < 1, c.Concurrency < 1, c.RegisterConcurrency < 1, c.PollConcurrency < 1:
		return errors.New("buyers, attempts and every concurrency must be at least 1")
	case c.Quantity < 1:
		return errors.New("quantity must be at least 1")
	case c.PerUserLimit < 1 || c.PerUserLimit > c.Quantity:
		return errors.New("per-user limit must be between 1 and the quantity")
	case c.StartDelay < 0, c.SaleDuration <= 0, c.DrainTimeout < 0, c.RequestTimeout < 0:
		return errors.New("durations must not be negative")
	}
	_, err := queryEndpoint(c.URL)
	return err
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Result is what a run measured and checked. Latencies are in milliseconds, durations in
// seconds.
type Result struct {
	RunID       string `json:"run_id"`
	FlashSaleID string `json:"flash_sale_id"`
	// RequestShapes names how the burst's and the floor's requests were sent (Describe).
	RequestShapes string `json:"request_shapes"`
	Buyers        int    `json:"buyers"`
	Concurrency   int    `json:"concurrency"`
	// RegisterS is how long registering every buyer took.
	RegisterS float64 `json:"register_s"`

	// Attempts is how many placeFlashSaleOrder calls got an answer or failed in transport.
	Attempts     int     `json:"attempts"`
	BurstS       float64 `json:"burst_s"`
	AttemptsPerS float64 `json:"attempts_per_s"`
	// Accepted counts attempts answered with an order; AcceptedUnits their distinct orders' units.
	Accepted      int `json:"accepted"`
	AcceptedUnits int `json:"accepted_units"`
	// Rejections counts the other attempts by extensions.code, or by a Code* constant.
	Rejections map[string]int `json:"rejections"`
	// AcceptedP50Ms and AcceptedP99Ms are the latencies of the accepted attempts alone.
	AcceptedP50Ms float64 `json:"accepted_p50_ms"`
	AcceptedP99Ms float64 `json:"accepted_p99_ms"`
	// SellOutS is the seconds from the burst's first attempt to its last accepted answer.
	SellOutS float64 `json:"sell_out_s"`
	P50Ms    float64 `json:"p50_ms"`
	P95Ms    float64 `json:"p95_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// Slow says when the attempts slower than SlowOver began: what a p99 over it is made of.
	Slow SlowAttempts `json:"slow_attempts"`

	// Floor*: the { __typename } baseline at the same concurrency, when Config.Floor is set.
	// It is measured twice, just before the sale opens and again once the census is done,
	// and these are the means of the two, so that the machine's drift over the run (shared
	// machines speed up and slow down by a fifth within minutes) weighs on the burst and its
	// baseline alike. FloorBeforePerS and FloorAfterPerS are the two measurements.
	FloorPerS       float64 `json:"floor_per_s,omitempty"`
	FloorP50Ms      float64 `json:"floor_p50_ms,omitempty"`
	FloorP99Ms      float64 `json:"floor_p99_ms,omitempty"`
	FloorBeforePerS float64 `json:"floor_before_per_s,omitempty"`
	FloorAfterPerS  float64 `json:"floor_after_per_s,omitempty"`

	// Quantity is what the sale offered; Remaining and SaleStatus what flashSale(id) says
	// after the drain.
	Quantity   int    `json:"quantity"`
	Remaining  int    `json:"remaining"`
	SaleStatus string `json:"sale_status"`
	// Sold is the units in PENDING or PAID orders for the sale across every buyer's orders.
	Sold int `json:"sold"`
	// Oversold is how far accepted units, or Sold, exceed Quantity; it must be 0.
	Oversold int `json:"oversold"`
	// OverLimitBuyers counts buyers granted more than the per-user limit; it must be 0.
	OverLimitBuyers int `json:"over_limit_buyers"`
	// DuplicateIDs counts accepted answers that repeated another attempt's order id.
	DuplicateIDs int `json:"duplicate_ids"`
	// Unacknowledged counts orders for the sale in the buyers' lists that no accepted answer
	// returned (an attempt that failed in transport may legitimately leave one).
	Unacknowledged int `json:"unacknowledged"`

	// Lost counts accepted orders that are absent from their buyer's orders (Missing) or not
	// PAID when the drain ended (Unpaid, by last status seen, "" for an order never found by
	// id); it must be 0.
	Lost    int            `json:"lost"`
	Missing int            `json:"missing"`
	Unpaid  map[string]int `json:"unpaid,omitempty"`
	// Drained reports whether every accepted order showed PAID within the drain timeout.
	// DrainS is the seconds from the last accepted order's createdAt to the last PAID
	// order's updatedAt, as the shop stamped them (until the drain gave up, when it did not).
	// DrainObservedS is the same seen by the polls, from the last accepted answer to the poll
	// that saw the last PAID: the polls start when the burst ends, so it is never less than
	// the time the burst went on after the sell-out.
	Drained        bool    `json:"drained"`
	DrainS         float64 `json:"drain_s"`
	DrainObservedS float64 `json:"drain_observed_s"`
	// QueryErrors counts failed order queries after the burst; with any, Sold may be short.
	QueryErrors int `json:"query_errors"`

	// Violations lists broken invariants (oversold, lost, …); Warnings things worth a look.
	Violations []string `json:"violations"`
	Warnings   []string `json:"warnings"`
}

// OK reports whether the run found no broken invariant.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Run registers the buyers, opens a sale, fires the burst, and checks the outcome through the
// API, writing a progress line to progress (nil for none) every second. It returns an error
// when the run could not be carried out; a run that found the shop broken returns a Result
// with Violations and no error. When ctx ends during the burst or after it, Run returns what
// it had so far along with ctx's error.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("loadgen config: %w", err)
	}
	if progress == nil {
		progress = io.Discard
	}
	c, err := NewClient(cfg.URL, cfg.Concurrency, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &Result{
		RunID: cfg.RunID, Buyers: cfg.Buyers, Concurrency: cfg.Concurrency, Quantity: cfg.Quantity,
		RequestShapes: Describe(cfg.Shapes),
		Rejections:    map[string]int{}, Violations: []string{}, Warnings: []string{},
	}

	admin, err := login(ctx, c, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("log in as admin %s: %w", cfg.AdminEmail, err)
	}
	fmt.Fprintf(progress, "buyers and the floor send their requests as %s, in turn\n", res.RequestShapes)
	t0 := time.Now()
	buyers, err := registerBuyers(ctx, c, cfg, progress)
	if err != nil {
		return nil, err
	}
	res.RegisterS = seconds(time.Since(t0))

	var before floorRate
	if cfg.Floor {
		if before, err = measureFloor(ctx, c, cfg); err != nil {
			return nil, err
		}
	}

	sale, err := createSale(ctx, c, admin, cfg)
	if err != nil {
		return nil, err
	}
	res.FlashSaleID = sale.ID
	fmt.Fprintf(progress, "sale %s starts at %s\n", sale.ID, sale.StartsAt.Format(time.RFC3339))
	warm(ctx, c, cfg.Concurrency)
	if err := waitForStart(ctx, c, admin, sale, progress); err != nil {
		return nil, err
	}

	// As go test does before each benchmark, the burst starts on a collected heap: the floor
	// and the registrations before it allocated hundreds of megabytes, and where the
	// collector's cycle stood at the sale's first millisecond otherwise differed from round
	// to round, and a cycle starting with the burst shows in its p99. Against a stack in
	// another process this collects the load generator's heap alone.
	runtime.GC()
	endBurst := func() {}
	if cfg.AroundBurst != nil {
		endBurst = cfg.AroundBurst()
	}
	burstStart := time.Now()
	atts, elapsed := burst(ctx, c, cfg, sale.ID, buyers, progress)
	endBurst()
	sum := summarize(atts, cfg.PerUserLimit)
	res.addBurst(sum, elapsed)
	res.Slow = slowAttempts(atts, burstStart, sum.lastAccepted)
	if !sum.lastAccepted.IsZero() {
		res.SellOutS = seconds(sum.lastAccepted.Sub(burstStart))
	}
	if err := ctx.Err(); err != nil {
		res.check(cfg)
		return res, err
	}

	burstEnd := time.Now()
	poll := drainOrders(ctx, c, cfg, admin, sum, burstEnd, progress)
	cs, unlisted := census(ctx, c, cfg, buyers, sale.ID, sum.orders, progress)
	d := drainOutcome(poll.orders, unlisted, sum.lastAccepted, poll.end, poll.queryErrors)
	res.addDrain(d)
	res.Sold, res.Unacknowledged = cs.sold, cs.unacknowledged
	if cfg.Floor {
		after, err := measureFloor(ctx, c, cfg)
		if err != nil {
			return res, err
		}
		res.addFloor(before, after)
	}
	res.QueryErrors = d.queryErrors + cs.queryErrors
	if st, err := saleState(ctx, c, admin, sale.ID); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("read flashSale(%s): %v", sale.ID, err))
	} else {
		res.Remaining, res.SaleStatus = st.Remaining, st.Status
		if st.Quantity != cfg.Quantity {
			res.Warnings = append(res.Warnings, fmt.Sprintf("flashSale.quantity is %d; the sale was created with %d", st.Quantity, cfg.Quantity))
		}
	}
	res.check(cfg)
	return res, ctx.Err()
}

// floorRate is one measurement of the floor.
type floorRate struct{ perS, p50, p99 float64 }

func measureFloor(ctx context.Context, c *Client, cfg Config) (floorRate, error) {
	var r floorRate
	var err error
	if r.perS, r.p50, r.p99, err = floor(ctx, c.Shaped(cfg.Shapes), cfg.Concurrency, cfg.Attempts); err != nil {
		return r, fmt.Errorf("measure floor: %w", err)
	}
	return r, nil
}

// addFloor records the floor as the means of its measurements before and after the burst.
func (r *Result) addFloor(before, after floorRate) {
	r.FloorBeforePerS, r.FloorAfterPerS = before.perS, after.perS
	r.FloorPerS = (before.perS + after.perS) / 2
	r.FloorP50Ms = (before.p50 + after.p50) / 2
	r.FloorP99Ms = (before.p99 + after.p99) / 2
}

// addBurst records the burst's figures.
func (r *Result) addBurst(s burstSummary, elapsed time.Duration) {
	r.Attempts = s.attempts
	r.BurstS = seconds(elapsed)
	r.AttemptsPerS = perSecond(s.attempts, elapsed)
	r.Accepted, r.AcceptedUnits = s.accepted, s.acceptedUnits
	r.Rejections = s.rejections
	r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs = ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)
	r.AcceptedP50Ms, r.AcceptedP99Ms = ms(s.acceptedP50), ms(s.acceptedP99)
	r.OverLimitBuyers = s.overLimit
	r.DuplicateIDs = s.duplicates
}

// addDrain records what polling the accepted orders found.
func (r *Result) addDrain(d drainResult) {
	r.Missing, r.Unpaid = d.missing, d.unpaid
	r.Lost = d.missing
	for _, n := range d.unpaid {
		r.Lost += n
	}
	r.Drained, r.DrainS, r.DrainObservedS = d.drained, seconds(d.elapsed), seconds(d.observed)
}

// check works out Oversold and lists the violations and warnings.
func (r *Result) check(cfg Config) {
	r.Oversold = max(r.AcceptedUnits-cfg.Quantity, r.Sold-cfg.Quantity, 0)
	if r.Oversold > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("oversold by %d: %d units accepted, %d in PENDING/PAID orders, %d for sale", r.Oversold, r.AcceptedUnits, r.Sold, cfg.Quantity))
	}
	if r.OverLimitBuyers > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d buyers got more than the per-user limit of %d", r.OverLimitBuyers, cfg.PerUserLimit))
	}
	if r.DuplicateIDs > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d accepted answers repeated an order id given for another idempotency key", r.DuplicateIDs))
	}
	if r.Lost > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d accepted orders lost: %d missing from their buyer's orders, %v not PAID within %s", r.Lost, r.Missing, r.Unpaid, cfg.DrainTimeout))
	}
	if r.Unacknowledged > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d orders for the sale were never returned to an attempt (transport failures: %d)", r.Unacknowledged, r.transportFailures()))
	}
	if r.QueryErrors > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d order queries failed after the burst; sold may be short", r.QueryErrors))
	}
	if r.SaleStatus != "" && r.Remaining+r.Sold != cfg.Quantity {
		r.Warnings = append(r.Warnings, fmt.Sprintf("stock not conserved: remaining %d + sold %d != quantity %d", r.Remaining, r.Sold, cfg.Quantity))
	}
	if r.Accepted == 0 && r.Attempts > 0 {
		r.Warnings = append(r.Warnings, "no attempt was accepted")
	}
}

// transportFailures counts attempts that failed without a GraphQL answer.
func (r *Result) transportFailures() int {
	n := 0
	for code, count := range r.Rejections {
		switch code {
		case CodeTransport, CodeTimeout, CodeBadResponse, CodeCanceled:
			n += count
		default:
			if len(code) > 5 && code[:5] == "HTTP_" {
				n += count
			}
		}
	}
	return n
}

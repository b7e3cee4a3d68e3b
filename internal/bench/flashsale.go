package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/stores/postgres"
)

// FlashSaleResult is the flash-sale burst through the API beside its three baselines from
// the same run: the floor ({ __typename } against the same server at the same concurrency),
// the ceiling (the Lua reservation in Redis with no HTTP) and the seed's lock. The floor is
// the mean of one measurement before the burst and one after it (loadgen.Result.FloorPerS).
type FlashSaleResult struct {
	// RequestShapes names how the burst and its floor sent their requests (loadgen.Describe).
	RequestShapes string  `json:"request_shapes"`
	Buyers        int     `json:"buyers"`
	Attempts      int     `json:"attempts"`
	Concurrency   int     `json:"concurrency"`
	AttemptsPerS  float64 `json:"attempts_per_s"`
	FloorPerS     float64 `json:"floor_per_s"`
	CeilingPerS   float64 `json:"ceiling_per_s"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	FloorP50Ms    float64 `json:"floor_p50_ms"`
	FloorP99Ms    float64 `json:"floor_p99_ms"`
	// FloorBeforePerS and FloorAfterPerS are the floor's two measurements.
	FloorBeforePerS float64 `json:"floor_before_per_s"`
	FloorAfterPerS  float64 `json:"floor_after_per_s"`
	Quantity        int     `json:"quantity"`
	Sold            int     `json:"sold"`
	Oversold        int     `json:"oversold"`
	Lost            int     `json:"lost"`
	// DrainS is the seconds from the last accepted order's createdAt until the last one
	// turned PAID (its updatedAt), read through the API (Drained false: until the drain
	// gave up). DrainObservedS is when the load generator's polls saw it, from the last
	// accepted answer: the polls start once the burst is over, so it includes the rest of
	// the burst. DrainDBS is DrainS read from PostgreSQL (in-process stack only).
	DrainS         float64 `json:"drain_s"`
	DrainObservedS float64 `json:"drain_observed_s"`
	Drained        bool    `json:"drained"`
	DrainDBS       float64 `json:"drain_db_s,omitempty"`
	SeedLockSold   int     `json:"seed_lock_sold"`
	// RefusedWithStock counts attempts refused for another reason than SOLD_OUT or
	// LIMIT_EXCEEDED, which only an empty pool or a buyer's limit justify; SeedLockRefused
	// counts the seed's "could not acquire lock" refusals before its last unit was sold.
	RefusedWithStock int `json:"refused_with_stock"`
	SeedLockRefused  int `json:"seed_lock_refused_with_stock"`

	// AcceptedP50Ms and AcceptedP99Ms are the latencies of the accepted attempts alone;
	// SellOutS is how long into the burst the last unit was sold.
	AcceptedP50Ms float64 `json:"accepted_p50_ms"`
	AcceptedP99Ms float64 `json:"accepted_p99_ms"`
	SellOutS      float64 `json:"sell_out_s"`

	// PG* say how the API's PostgreSQL pools (shared with the workers, as in devstack) were
	// contended during the burst (in-process stack only): connection acquires, how many
	// found the pool empty, and the time they waited in all.
	PGAcquires       int64   `json:"pg_acquires,omitempty"`
	PGAcquiresWaited int64   `json:"pg_acquires_waited,omitempty"`
	PGAcquireWaitMs  float64 `json:"pg_acquire_wait_ms,omitempty"`

	// CPU is where the machine's CPU went during the burst (nil where /proc cannot be read).
	CPU *BurstCPU `json:"cpu,omitempty"`
	// Steps are the accepted orders' steps inside the checkout (in-process stack only).
	Steps *PlacementSteps `json:"placement_steps,omitempty"`

	Accepted   int            `json:"accepted"`
	Rejections map[string]int `json:"rejections"`
	Violations []string       `json:"violations"`
	Warnings   []string       `json:"warnings"`
	Ceiling    CeilingResult  `json:"ceiling"`
	SeedLock   SeedLockResult `json:"seed_lock"`
	// Rounds are the figures of each sale; the ones above are their medians (combineRounds).
	Rounds []RoundFigures `json:"rounds"`
	// Burst is everything the load generator reported of the median round.
	Burst *loadgen.Result `json:"burst"`
}

// BurstCPU splits the burst's CPU at the sell-out: while units were being sold (each
// accepted order's insert, and the relay, payments and notifications it sets off) and while
// the rest of the attempts were refused (as the orders' payments and events went on).
type BurstCPU struct {
	Burst        *CPUUse `json:"burst"`
	SellOut      *CPUUse `json:"sell_out"`
	AfterSellOut *CPUUse `json:"after_sell_out"`
}

// runFlashSale fires the load generator's burst at url cfg.FlashRounds times (floors
// included), then the ceiling and the seed's lock with the same buyers, attempts and
// concurrency on redisClient. Each round registers its own buyers and opens its own sale.
// local is the in-process API, nil when measuring one at url.
func runFlashSale(ctx context.Context, cfg Config, url string, local *app.API, redisClient goredis.UniversalClient, runID string, progress io.Writer) (*FlashSaleResult, error) {
	r, err := flashSaleRounds(ctx, cfg, url, local, runID, progress)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "ceiling: %d Lua reservations at concurrency %d, no HTTP\n", cfg.Attempts, cfg.Concurrency)
	prefix := "bench-" + runID + ":"
	if r.Ceiling, err = runCeiling(ctx, redisClient, prefix, cfg.Buyers, cfg.Attempts, cfg.Concurrency, cfg.Quantity, 1); err != nil {
		return r, err
	}
	r.CeilingPerS = r.Ceiling.PerS

	fmt.Fprintf(progress, "seed lock: %d SET NX/GET/DECRBY/DEL reservations at concurrency %d\n", cfg.Attempts, cfg.Concurrency)
	if r.SeedLock, err = runSeedLock(ctx, redisClient, prefix, cfg.Attempts, cfg.Concurrency, cfg.Quantity); err != nil {
		return r, err
	}
	r.SeedLockSold, r.SeedLockRefused = r.SeedLock.Sold, r.SeedLock.RefusedWithStock
	return r, nil
}

// flashSaleRound is one sale: buyers, floor, burst, drain, census, floor again. profile
// says whether to profile its burst.
// flashSaleRounds runs cfg.FlashRounds sales against url and combines them.
func flashSaleRounds(ctx context.Context, cfg Config, url string, local *app.API, runID string, progress io.Writer) (*FlashSaleResult, error) {
	rounds := make([]*FlashSaleResult, 0, cfg.FlashRounds)
	for round := range cfg.FlashRounds {
		fmt.Fprintf(progress, "flash sale: round %d of %d\n", round+1, cfg.FlashRounds)
		if round > 0 {
			waitQuiet(ctx, progress) // the last round's notifications and counts run on
		}
		r, err := flashSaleRound(ctx, cfg, url, local, fmt.Sprintf("%s-r%d", runID, round+1), round == 0 && local != nil, progress)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round+1, err)
		}
		rounds = append(rounds, r)
	}
	return combineRounds(rounds), nil
}

func flashSaleRound(ctx context.Context, cfg Config, url string, local *app.API, runID string, profile bool, progress io.Writer) (*FlashSaleResult, error) {
	var db *postgres.DB
	var steps *prometheus.HistogramVec
	if local != nil {
		db, steps = local.DB, local.PlacementSteps
	}
	lg := loadgen.DefaultConfig()
	lg.URL = url
	lg.AdminEmail, lg.AdminPassword = cfg.AdminEmail, cfg.AdminPassword
	lg.Buyers, lg.Attempts, lg.Concurrency, lg.Quantity = cfg.Buyers, cfg.Attempts, cfg.Concurrency, cfg.Quantity
	lg.PerUserLimit = 1
	lg.Floor = true
	lg.RunID = runID
	var pool poolWait
	var placed *PlacementSteps
	var cpu *cpuRecorder
	var burstStart, burstEnd time.Time
	lg.AroundBurst = func() func() {
		stopProfile := func() {}
		if profile {
			stopProfile = startProfile(cfg.ProfileDir, "flashsale-burst", progress)
		}
		before, stepsBefore := snapshotPools(db), snapshotSteps(steps)
		cpu = startCPU()
		burstStart = time.Now()
		return func() {
			burstEnd = time.Now()
			cpu.end()
			stopProfile()
			pool = snapshotPools(db).since(before)
			placed = snapshotSteps(steps).placementSince(stepsBefore)
		}
	}
	res, err := loadgen.Run(ctx, lg, progress)
	if err != nil {
		return nil, fmt.Errorf("flash-sale burst: %w", err)
	}
	r := &FlashSaleResult{
		RequestShapes: res.RequestShapes, Buyers: res.Buyers, Attempts: res.Attempts, Concurrency: res.Concurrency,
		AttemptsPerS: res.AttemptsPerS, FloorPerS: res.FloorPerS, P50Ms: res.P50Ms, P99Ms: res.P99Ms,
		FloorP50Ms: res.FloorP50Ms, FloorP99Ms: res.FloorP99Ms,
		FloorBeforePerS: res.FloorBeforePerS, FloorAfterPerS: res.FloorAfterPerS,
		Quantity: res.Quantity, Sold: res.Sold, Oversold: res.Oversold, Lost: res.Lost,
		DrainS: res.DrainS, DrainObservedS: res.DrainObservedS, Drained: res.Drained,
		AcceptedP50Ms: res.AcceptedP50Ms, AcceptedP99Ms: res.AcceptedP99Ms, SellOutS: res.SellOutS,
		Accepted: res.Accepted, Rejections: res.Rejections, Violations: res.Violations, Warnings: res.Warnings,
		Burst:      res,
		PGAcquires: pool.acquires, PGAcquiresWaited: pool.waited, PGAcquireWaitMs: ms(pool.wait),
		Steps: placed,
	}
	if cpu != nil {
		soldOut := burstStart.Add(time.Duration(res.SellOutS * float64(time.Second)))
		r.CPU = &BurstCPU{Burst: cpu.use(burstStart, burstEnd), SellOut: cpu.use(burstStart, soldOut), AfterSellOut: cpu.use(soldOut, burstEnd)}
	}
	for code, n := range res.Rejections {
		if code != "SOLD_OUT" && code != "LIMIT_EXCEEDED" {
			r.RefusedWithStock += n
		}
	}
	if db != nil {
		if r.DrainDBS, err = drainFromDB(ctx, db, res.FlashSaleID); err != nil {
			return r, err
		}
	}
	return r, nil
}

// drainFromDB reads, on every shard, when the sale's last order was inserted and when its
// last order turned PAID, and returns the seconds between them.
func drainFromDB(ctx context.Context, db *postgres.DB, saleID string) (float64, error) {
	id, err := flashsale.ParseSaleID(saleID)
	if err != nil {
		return 0, err
	}
	var lastInsert, lastPaid time.Time
	for shard := range db.Shards() {
		var ins, paid *time.Time
		err := db.Pool(shard).QueryRow(ctx,
			`SELECT max(created_at), max(updated_at) FILTER (WHERE status = 'PAID') FROM orders WHERE sale_id = $1`, id).
			Scan(&ins, &paid)
		if err != nil {
			return 0, fmt.Errorf("read the drain of sale %s from shard %d: %w", saleID, shard, err)
		}
		if ins != nil && ins.After(lastInsert) {
			lastInsert = *ins
		}
		if paid != nil && paid.After(lastPaid) {
			lastPaid = *paid
		}
	}
	return seconds(max(lastPaid.Sub(lastInsert), 0)), nil
}

// poolWait adds up the acquire statistics of every shard's pool.
type poolWait struct {
	acquires, waited int64
	wait             time.Duration
}

// snapshotPools reads the pools' statistics so far; nothing without a db.
func snapshotPools(db *postgres.DB) poolWait {
	var w poolWait
	if db == nil {
		return w
	}
	for shard := range db.Shards() {
		st := db.Pool(shard).Stat()
		w.acquires += st.AcquireCount()
		w.waited += st.EmptyAcquireCount()
		w.wait += st.EmptyAcquireWaitTime()
	}
	return w
}

func (w poolWait) since(before poolWait) poolWait {
	return poolWait{acquires: w.acquires - before.acquires, waited: w.waited - before.waited, wait: w.wait - before.wait}
}

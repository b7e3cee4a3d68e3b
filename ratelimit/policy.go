package ratelimit

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale"
)

// Budget names one kind of work a client is limited in.
type Budget int

// The budgets. Each has a limit of its own in Budgets, and a key of its own per client.
const (
	// Requests: every GraphQL request over HTTP, reads and the mutations below alike, per
	// viewer, or per client address when anonymous. A refusal refuses the whole request.
	Requests Budget = iota
	// Orders: placeOrder and placeFlashSaleOrder, which take stock, per viewer.
	Orders
	// Passwords: login and register, which check or hash a password, per client address.
	Passwords
	// Accounts: login and register per account (the normalized email), from any address:
	// guessing one account's password is limited however many addresses try.
	Accounts
	// Websockets: websocket connections opened, per client address.
	Websockets
	// Subscriptions: subscriptions started, per viewer or client address.
	Subscriptions
	numBudgets
)

var budgetNames = [numBudgets]string{"requests", "orders", "passwords", "accounts", "websockets", "subscriptions"}

// String is the budget's name, as the metrics label it.
func (b Budget) String() string { return budgetNames[b] }

var refusalMessages = [numBudgets]string{
	"too many requests",
	"too many orders",
	"too many password attempts from this address",
	"too many password attempts for this account",
	"too many connections from this address",
	"too many subscriptions",
}

// Budgets are the limits of each budget; a zero Limit is no limit.
type Budgets struct {
	Requests, Orders, Passwords, Accounts, Websockets, Subscriptions flashsale.Limit
}

func (b Budgets) of(budget Budget) flashsale.Limit {
	return [numBudgets]flashsale.Limit{b.Requests, b.Orders, b.Passwords, b.Accounts, b.Websockets, b.Subscriptions}[budget]
}

// Config is what a Policy needs.
type Config struct {
	Budgets Budgets
	// Shared counts across processes (stores/redis.RateLimiter); nil limits this process
	// alone.
	Shared flashsale.RateLimiter
	// LocalKeys bounds the keys this process remembers (DefaultLocalKeys when 0).
	LocalKeys int
	Log       *slog.Logger
	Registry  prometheus.Registerer // nil: no metrics
}

// DefaultLocalKeys is how many keys a process remembers by default: a crowd of 100,000
// clients in the last minutes, some 20 MB.
const DefaultLocalKeys = 100_000

const (
	// sharedTimeout bounds one shared check, including the wait for a pooled connection in
	// a burst: a Redis slower than this is treated as down rather than holding every
	// request up.
	sharedTimeout = time.Second
	// probeEvery is how often, while the shared limiter is down, one request tries it again.
	probeEvery = time.Second
)

// Policy applies the budgets. Its methods are safe for concurrent use.
type Policy struct {
	budgets Budgets
	local   *local
	shared  flashsale.RateLimiter
	log     *slog.Logger

	// downUntil is 0 while the shared limiter answers; once it fails, the Unix nanoseconds
	// until which only this process limits, after which one request probes it again.
	downUntil atomic.Int64
	down      atomic.Bool

	// blocked holds, for CheckSoon, the keys the shared limiter refused in the background:
	// budget and key to the time.Time until which they are refused.
	blocked sync.Map

	refused  [numBudgets][2]prometheus.Counter // by budget, local (0) or shared (1)
	sharedUp prometheus.Gauge
	now      func() time.Time
}

// New returns a Policy of cfg.
func New(cfg Config) *Policy {
	if cfg.LocalKeys <= 0 {
		cfg.LocalKeys = DefaultLocalKeys
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Policy{budgets: cfg.Budgets, local: newLocal(cfg.LocalKeys), shared: cfg.Shared, log: cfg.Log, now: time.Now}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_rate_limit_refusals_total",
		Help: "Requests, fields and connections refused by a rate limit, by budget and by the limiter that refused: local (this process, in front, or alone while Redis is unreachable) or shared (Redis).",
	}, []string{"budget", "limiter"})
	p.sharedUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flashsale_rate_limit_shared_up",
		Help: "1 while the shared rate limiter (Redis) answers, 0 while this process limits alone.",
	})
	for b := range numBudgets {
		for i, where := range []string{"local", "shared"} {
			p.refused[b][i] = refusals.WithLabelValues(b.String(), where)
		}
	}
	if cfg.Shared != nil {
		p.sharedUp.Set(1)
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(refusals, p.sharedUp)
	}
	return p
}

// Enabled reports whether budget has a limit (a nil Policy has none).
func (p *Policy) Enabled(budget Budget) bool {
	return p != nil && !p.budgets.of(budget).IsZero()
}

// Check spends one event of key's budget, in this process and then in the shared limiter,
// and returns RATE_LIMITED, with how long to wait, when either refuses.
func (p *Policy) Check(ctx context.Context, budget Budget, key string) error {
	if err := p.Local(budget, key); err != nil {
		return err
	}
	return p.Shared(ctx, budget, key)
}

// CheckSoon spends one event of key's budget in this process at once, and in the shared
// limiter in the background, without waiting for it: a key the shared limiter refuses is
// refused by this process until the shared limiter's retry-after. It is for the order
// mutations, whose buyers wait on a stock reservation already: a second Redis round trip in
// front of it queues a sale's opening wave for the connections. The cost is that each
// process lets through what its own limiter allows until the first shared refusal reaches it.
func (p *Policy) CheckSoon(ctx context.Context, budget Budget, key string) error {
	if err := p.Local(budget, key); err != nil {
		return err
	}
	if !p.Enabled(budget) || p.shared == nil {
		return nil
	}
	name := budget.String() + ":" + key
	now := p.now()
	if until, ok := p.blocked.Load(name); ok {
		if wait := until.(time.Time).Sub(now); wait > 0 {
			p.refused[budget][1].Inc()
			return refusal(budget, wait)
		}
		p.blocked.CompareAndDelete(name, until)
	}
	go func() { // bounded by sharedTimeout
		if wait, refused := p.sharedAllow(context.WithoutCancel(ctx), budget, key); refused {
			p.blocked.Store(name, now.Add(wait))
		}
	}()
	return nil
}

// Local spends one event of key's budget in this process alone.
func (p *Policy) Local(budget Budget, key string) error {
	if !p.Enabled(budget) {
		return nil
	}
	if wait, ok := p.local.allow(budget, key, p.budgets.of(budget), p.now()); !ok {
		p.refused[budget][0].Inc()
		return refusal(budget, wait)
	}
	return nil
}

// Shared spends one event of key's budget in the shared limiter, for what Local let
// through. While the shared limiter cannot be reached it lets everything through: Local has
// already applied the same budget.
func (p *Policy) Shared(ctx context.Context, budget Budget, key string) error {
	if wait, refused := p.sharedAllow(ctx, budget, key); refused {
		p.refused[budget][1].Inc()
		return refusal(budget, wait)
	}
	return nil
}

// sharedAllow asks the shared limiter, and says whether it refused and for how long.
func (p *Policy) sharedAllow(ctx context.Context, budget Budget, key string) (time.Duration, bool) {
	if !p.Enabled(budget) || p.shared == nil || !p.sharedUsable() {
		return 0, false
	}
	callCtx, cancel := context.WithTimeout(ctx, sharedTimeout)
	d, err := p.shared.Allow(callCtx, budget.String()+":"+key, p.budgets.of(budget))
	cancel()
	if err != nil {
		if ctx.Err() == nil { // not the client giving up
			p.sharedFailed(err)
		}
		return 0, false
	}
	p.sharedAnswered()
	return d.RetryAfter, !d.Allowed
}

// sharedUsable reports whether to ask the shared limiter: always while it answers, and
// while it is down, for one request every probeEvery.
func (p *Policy) sharedUsable() bool {
	until := p.downUntil.Load()
	if until == 0 {
		return true
	}
	now := p.now().UnixNano()
	return now >= until && p.downUntil.CompareAndSwap(until, now+int64(probeEvery))
}

func (p *Policy) sharedFailed(err error) {
	p.downUntil.Store(p.now().Add(probeEvery).UnixNano())
	if p.down.CompareAndSwap(false, true) {
		p.sharedUp.Set(0)
		p.log.Warn("rate limits: the shared limiter cannot be reached; this process limits alone until it answers", "err", err)
	}
}

func (p *Policy) sharedAnswered() {
	if p.down.Load() && p.down.CompareAndSwap(true, false) {
		p.downUntil.Store(0)
		p.sharedUp.Set(1)
		p.log.Info("rate limits: the shared limiter answers again")
	}
}

func refusal(budget Budget, wait time.Duration) error {
	return flashsale.Retryable(flashsale.ERATELIMITED, max(wait, time.Millisecond), "%s; try again later", refusalMessages[budget])
}

// KeyOf is the key of the client of ctx: its viewer when signed in, else its client
// address. exempt is true for an admin, whom the budgets do not limit: the shop's own staff
// run its operations, and a stolen admin token is a worse harm than any rate.
func KeyOf(ctx context.Context) (key string, exempt bool) {
	if v, ok := flashsale.ViewerFromContext(ctx); ok {
		return "user:" + strconv.FormatInt(int64(v.UserID), 10), v.Role == flashsale.RoleAdmin
	}
	return AddrKey(ctx), false
}

// AddrKey is the key of the client address of ctx, whoever is signed in.
func AddrKey(ctx context.Context) string {
	if a, ok := flashsale.ClientAddrFromContext(ctx); ok {
		return "addr:" + a.String()
	}
	return "addr:unknown"
}

// AccountKey is the key of an account, by its email as the shop stores it.
func AccountKey(email string) string { return "email:" + flashsale.NormalizeEmail(email) }

package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale"
)

// revokedSessions remembers the sign-ins (refresh-token families) revoked in the last
// AccessTTL, the longest an access token of one may still be unexpired, and ends the session
// contexts of those it learns of. Authenticate asks it about every request, so the answer for
// a process that has heard of no recent revocation is one atomic load.
type revokedSessions struct {
	n     atomic.Int64 // entries in until; 0 lets has answer without a map lookup
	until sync.Map     // family → time.Time after which no access token of it is alive

	mu       sync.Mutex
	watchers map[string]map[*sessionWatch]struct{} // family → session contexts to end
	swept    time.Time
}

type sessionWatch struct{ end context.CancelCauseFunc }

func (r *revokedSessions) has(family string, now time.Time) bool {
	if r.n.Load() == 0 || family == "" {
		return false
	}
	v, ok := r.until.Load(family)
	return ok && now.Before(v.(time.Time))
}

// add records the families as revoked until `until` and ends their session contexts.
func (r *revokedSessions) add(families []string, now, until time.Time) {
	var ends []context.CancelCauseFunc
	r.mu.Lock()
	for _, f := range families {
		if f == "" {
			continue
		}
		if _, loaded := r.until.Swap(f, until); !loaded {
			r.n.Add(1)
		}
		for w := range r.watchers[f] {
			ends = append(ends, w.end)
		}
		delete(r.watchers, f)
	}
	if now.Sub(r.swept) > time.Minute { // forget what can no longer matter
		r.swept = now
		r.until.Range(func(k, v any) bool {
			if !now.Before(v.(time.Time)) && r.until.CompareAndDelete(k, v) {
				r.n.Add(-1)
			}
			return true
		})
	}
	r.mu.Unlock()
	for _, end := range ends {
		end(flashsale.ErrSignedOut)
	}
}

// watch has end called when the family is revoked, until the returned stop is called.
func (r *revokedSessions) watch(family string, end context.CancelCauseFunc) (stop func()) {
	w := &sessionWatch{end: end}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watchers == nil {
		r.watchers = map[string]map[*sessionWatch]struct{}{}
	}
	ws := r.watchers[family]
	if ws == nil {
		ws = map[*sessionWatch]struct{}{}
		r.watchers[family] = ws
	}
	ws[w] = struct{}{}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if ws := r.watchers[family]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(r.watchers, family)
			}
		}
	}
}

// watching returns how many session contexts wait on a revocation (tests).
func (r *revokedSessions) watching() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ws := range r.watchers {
		n += len(ws)
	}
	return n
}

// SessionContext returns a context that ends with ErrAccessExpired when v's access token
// expires, or with ErrSignedOut when its sign-in is revoked here or on another replica (as
// the RevocationBus tells Revoked). It lets go of its timer and watch when it ends, with its
// parent or by cancel.
func (s *Service) SessionContext(ctx context.Context, v flashsale.Viewer) (context.Context, context.CancelFunc) {
	ctx, end := context.WithCancelCause(ctx)
	var stops []func() bool
	if !v.Expires.IsZero() {
		t := time.AfterFunc(v.Expires.Sub(s.now()), func() { end(flashsale.ErrAccessExpired) })
		stops = append(stops, t.Stop)
	}
	if v.Session != "" {
		stop := s.revoked.watch(v.Session, end)
		stops = append(stops, func() bool { stop(); return true })
		if s.revoked.has(v.Session, s.now()) { // revoked before the watch began
			end(flashsale.ErrSignedOut)
		}
	}
	context.AfterFunc(ctx, func() {
		for _, stop := range stops {
			stop()
		}
	})
	return ctx, func() { end(context.Canceled) }
}

// Revoked is told of families revoked anywhere (by the RevocationBus, including this
// process's own announcements): their access tokens are refused from now on and their
// session contexts end.
func (s *Service) Revoked(families []string) {
	now := s.now()
	s.revoked.add(families, now, now.Add(s.cfg.AccessTTL))
}

// Watching returns how many session contexts wait on a revocation (tests check that closed
// websockets let go of theirs).
func (s *Service) Watching() int { return s.revoked.watching() }

// revoke makes the families' revocation take effect here at once and announces it to the
// other replicas. The refresh tokens are already revoked in the database; if the
// announcement fails, other replicas accept the family's access tokens until they expire
// (at most AccessTTL), which is logged.
func (s *Service) revoke(ctx context.Context, families []string) {
	if len(families) == 0 {
		return
	}
	s.Revoked(families)
	if s.cfg.Revocations == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revocationTimeout)
	defer cancel()
	if err := s.cfg.Revocations.PublishRevoked(ctx, families); err != nil {
		s.log.WarnContext(ctx, "announce revoked sign-ins; other replicas accept their access tokens until they expire",
			"families", len(families), "err", err)
	}
}

// revocationTimeout bounds the announcement of a revocation.
const revocationTimeout = 2 * time.Second

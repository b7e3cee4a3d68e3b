package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

func newTestService(t *testing.T, ttl time.Duration, bus flashsale.RevocationBus) *Service {
	t.Helper()
	s, err := NewService(nil, nil, Config{Secret: []byte("0123456789abcdef0123456789abcdef"), AccessTTL: ttl, BcryptCost: 4, Revocations: bus},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type recordingBus struct {
	mu        sync.Mutex
	published [][]string
}

func (b *recordingBus) PublishRevoked(_ context.Context, families []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, families)
	return nil
}

// A revoked sign-in's access tokens are refused, whether remembered as verified or not, and
// the sign-ins around it are not; the revocation is announced to the other replicas.
func TestARevokedSessionsTokensAreRefused(t *testing.T) {
	t.Parallel()
	bus := &recordingBus{}
	s := newTestService(t, time.Minute, bus)
	u := &flashsale.User{ID: flashsale.NewUserID(7), Role: flashsale.RoleCustomer}
	revoked, err := s.signAccess(u, "revoked-family")
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := s.signAccess(u, "kept-family")
	unremembered, _ := newTestService(t, time.Minute, nil).signAccess(u, "revoked-family")
	for name, token := range map[string]string{"revoked": revoked, "kept": kept, "unremembered": unremembered} {
		if _, err := s.Authenticate(t.Context(), token); err != nil {
			t.Fatalf("%s before the revocation: %v", name, err)
		}
	}

	s.revoke(t.Context(), []string{"revoked-family"})
	for _, token := range []string{revoked, unremembered} {
		if _, err := s.Authenticate(t.Context(), token); !errors.Is(err, flashsale.ErrSignedOut) {
			t.Errorf("a token of the revoked family: got %v, want %v", err, flashsale.ErrSignedOut)
		}
	}
	if v, err := s.Authenticate(t.Context(), kept); err != nil || v.Session != "kept-family" {
		t.Errorf("a token of another family: got %+v, %v; want it accepted", v, err)
	}
	if len(bus.published) != 1 || len(bus.published[0]) != 1 || bus.published[0][0] != "revoked-family" {
		t.Errorf("announced %v; want [[revoked-family]]", bus.published)
	}

	// Once every access token of the family has expired, the memory of it goes.
	later := time.Now().Add(2 * time.Minute)
	s.now = func() time.Time { return later }
	s.Revoked([]string{"another"}) // sweeps
	if _, ok := s.revoked.until.Load("revoked-family"); ok {
		t.Error("the revoked family is remembered past AccessTTL; want it forgotten")
	}
}

// A session context ends with ErrSignedOut when its family is revoked (here, as the bus tells
// of it), and not when another family is.
func TestSessionContextEndsOnRevocation(t *testing.T) {
	t.Parallel()
	s := newTestService(t, time.Hour, nil)
	v := flashsale.Viewer{UserID: flashsale.NewUserID(1), Session: "family-a", Expires: time.Now().Add(time.Hour)}
	ctx, cancel := s.SessionContext(t.Context(), v)
	defer cancel()
	other, cancelOther := s.SessionContext(t.Context(), flashsale.Viewer{Session: "family-b", Expires: time.Now().Add(time.Hour)})
	defer cancelOther()
	s.Revoked([]string{"family-a"})
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session context did not end on its family's revocation")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, flashsale.ErrSignedOut) {
		t.Errorf("cause %v; want %v", cause, flashsale.ErrSignedOut)
	}
	if other.Err() != nil {
		t.Errorf("another family's session ended too: %v", context.Cause(other))
	}
	// A session opened after the revocation ends at once.
	late, cancelLate := s.SessionContext(t.Context(), v)
	defer cancelLate()
	if !errors.Is(context.Cause(late), flashsale.ErrSignedOut) {
		t.Errorf("a session of a revoked family opened late: cause %v; want %v", context.Cause(late), flashsale.ErrSignedOut)
	}
}

// A session context ends with ErrAccessExpired when its token expires.
func TestSessionContextEndsAtExpiry(t *testing.T) {
	t.Parallel()
	s := newTestService(t, time.Hour, nil)
	ctx, cancel := s.SessionContext(t.Context(), flashsale.Viewer{Session: "family", Expires: time.Now().Add(50 * time.Millisecond)})
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session context outlived its token")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, flashsale.ErrAccessExpired) {
		t.Errorf("cause %v; want %v", cause, flashsale.ErrAccessExpired)
	}
}

// A session that ends, with its parent (its websocket closed) or by its cancel, lets go of
// its watch.
func TestSessionContextLetsGoWithItsParent(t *testing.T) {
	t.Parallel()
	s := newTestService(t, time.Hour, nil)
	parent, cancel := context.WithCancel(t.Context())
	for range 3 {
		s.SessionContext(parent, flashsale.Viewer{Session: "family", Expires: time.Now().Add(time.Hour)}) // ends with its parent
	}
	_, stop := s.SessionContext(t.Context(), flashsale.Viewer{Session: "family", Expires: time.Now().Add(time.Hour)})
	if got := s.Watching(); got != 4 {
		t.Fatalf("watching %d sessions; want 4", got)
	}
	cancel()
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for s.Watching() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := s.Watching(); got != 0 {
		t.Errorf("watching %d sessions after their parents ended; want 0", got)
	}
}

package e2e_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/internal/apitest"
)

const (
	refreshQ = `mutation($t: String!) { refreshToken(refreshToken: $t) { ` + apitest.AuthFields + ` } }`
	logoutQ  = `mutation($t: String!) { logout(refreshToken: $t) }`
	meQ      = `{ me { id } }`
)

// refresh spends a refresh token and returns the new pair, or nil and the refusal.
func refresh(t testing.TB, s *apitest.Server, token string) (*apitest.Auth, *apitest.Response) {
	t.Helper()
	r := s.Do(t, "", refreshQ, map[string]any{"t": token})
	if len(r.Errors) > 0 {
		return nil, r
	}
	var data struct{ RefreshToken apitest.Auth }
	r.MustData(t, &data)
	return &data.RefreshToken, r
}

// logout signs out with the refresh token and fails unless the answer is true.
func logout(t testing.TB, s *apitest.Server, token string) {
	t.Helper()
	var data struct{ Logout bool }
	s.Do(t, "", logoutQ, map[string]any{"t": token}).MustData(t, &data)
	if !data.Logout {
		t.Errorf("logout answered false; want true")
	}
}

// wantSignedOut fails unless the refresh token is refused and the access token is refused
// on the HTTP path.
func wantSignedOut(t testing.TB, s *apitest.Server, what string, pair apitest.Auth) {
	t.Helper()
	if p, r := refresh(t, s, pair.RefreshToken); p != nil || len(r.Codes()) != 1 || r.Codes()[0] != flashsale.EUNAUTHENTICATED {
		t.Errorf("%s: refreshing got %v; want UNAUTHENTICATED", what, r.Codes())
	}
	if r := s.Do(t, pair.AccessToken, meQ, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("%s: the access token got status %d (%v); want 401", what, r.Status, r.Codes())
	}
}

// Logging out revokes the token's family: neither the token nor any other of the family
// refreshes, and the family's access tokens are refused. The user's other sign-ins go on.
// Logout answers true for any token at all.
func TestLogoutRevokesTheFamily(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	_, first, _ := s.Register(t, "leaving@example.test", "password-1", "Leaving")
	second, r := refresh(t, s, first)
	if second == nil {
		t.Fatalf("refresh: %v", r.Codes())
	}
	spentFamily := s.Login(t, "leaving@example.test", "password-1")
	spentFamilyNext, r := refresh(t, s, spentFamily.RefreshToken)
	if spentFamilyNext == nil {
		t.Fatalf("refresh: %v", r.Codes())
	}
	elsewhere := s.Login(t, "leaving@example.test", "password-1")

	logout(t, s, second.RefreshToken)                    // with the family's live token
	logout(t, s, spentFamily.RefreshToken)               // with a spent token of the other family
	wantSignedOut(t, s, "the logged-out token", *second) // the same token, and the family's only live one
	wantSignedOut(t, s, "the live token of a family logged out by a spent one", *spentFamilyNext)
	if p, _ := refresh(t, s, first); p != nil {
		t.Errorf("the family's first (spent) token refreshed after logout")
	}

	var me struct{ Me user }
	s.Do(t, elsewhere.AccessToken, meQ, nil).MustData(t, &me)
	if me.Me.ID != elsewhere.User.ID {
		t.Errorf("another sign-in's access token: me is %q; want %q", me.Me.ID, elsewhere.User.ID)
	}
	if p, r := refresh(t, s, elsewhere.RefreshToken); p == nil {
		t.Errorf("another sign-in's refresh token after logout: %v; want a new pair", r.Codes())
	}
	for name, tok := range map[string]string{
		"the same token again": second.RefreshToken, "an unknown token": "rt_3_AAAAAAAAAAAAAAAAAAAAAAAAAA",
		"garbage": "garbage", "an empty string": "", "an access token": elsewhere.AccessToken,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logout(t, s, tok)
		})
	}
}

// A replica that promotes an existing customer to admin (ADMIN_EMAIL naming their account,
// in another case) signs the customer out everywhere: their refresh token dies, and their
// access token, which says CUSTOMER, is refused on the other replica too.
func TestPromotionSignsTheAccountOut(t *testing.T) {
	t.Parallel()
	first := apitest.Start(t)
	access, refreshToken, id := first.Register(t, "promoted@example.test", "customer-password", "Promoted")
	var me struct{ Me user }
	first.Do(t, access, meQ, nil).MustData(t, &me) // remembered as verified on the first replica

	apitest.StartReplica(t, first, apitest.WithConfig(func(c *app.Config) {
		c.AdminEmail, c.AdminPassword = " Promoted@Example.TEST", "the-new-admin-password"
	}))
	deadline := time.Now().Add(patience)
	for first.Do(t, access, meQ, nil).Status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("the customer's access token is still accepted on the first replica %v after the promotion", patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantSignedOut(t, first, "the customer's sign-in", apitest.Auth{AccessToken: access, RefreshToken: refreshToken})
	admin := first.Login(t, "promoted@example.test", "the-new-admin-password")
	if admin.User.ID != id || admin.User.Role != "ADMIN" {
		t.Errorf("login after promotion: %s %s; want %s ADMIN", admin.User.ID, admin.User.Role, id)
	}
	first.Do(t, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": "promoted@example.test", "p": "customer-password"}).WantCode(t, flashsale.EUNAUTHENTICATED)
	// The user, cached as a customer before, is read as an admin now: by a refresh, which
	// signs the role it reads, and by me.
	next, r := refresh(t, first, admin.RefreshToken)
	if next == nil {
		t.Fatalf("refresh after promotion: %v", r.Codes())
	} else if next.User.Role != "ADMIN" {
		t.Errorf("refresh after promotion signed role %s; want ADMIN", next.User.Role)
	}
	var role struct{ Me user }
	first.Do(t, next.AccessToken, `{ me { id role } }`, nil).MustData(t, &role)
	if role.Me.Role != "ADMIN" {
		t.Errorf("me after promotion: role %s; want ADMIN", role.Me.Role)
	}
}

// Two or three refreshes racing with one token leave, every time, no live token of the family:
// at most one of them wins, and the winner's new tokens die with the reuse the losers detect.
func TestConcurrentRefreshesLeaveNoLiveToken(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	s.Register(t, "racer@example.test", "password-1", "Racer")
	const rounds = 50
	for round := range rounds {
		login := s.Login(t, "racer@example.test", "password-1")
		spenders := 2 + round%2
		won := make([]*apitest.Auth, spenders)
		var wg sync.WaitGroup
		for i := range spenders {
			wg.Go(func() { won[i], _ = refresh(t, s, login.RefreshToken) })
		}
		wg.Wait()
		winners := 0
		for _, p := range won {
			if p == nil {
				continue
			}
			winners++
			wantSignedOut(t, s, "the winner of a refresh race", *p)
		}
		if winners > 1 {
			t.Errorf("round %d: %d of %d refreshes with one token succeeded; want at most 1", round, winners, spenders)
		}
		if t.Failed() {
			t.Fatalf("round %d of %d failed", round, rounds)
		}
	}
}

// An orderStatusChanged subscription on one replica is closed with 4403 and a reason the
// moment its sign-in is logged out through another replica; the same user's socket of
// another sign-in stays open, and closed sockets let go of their watch.
func TestSubscriptionEndsWhenItsSignInIsRevokedElsewhere(t *testing.T) {
	t.Parallel()
	first := apitest.Start(t)
	second := apitest.StartReplica(t, first)
	access, refreshToken, _ := first.Register(t, "watcher@example.test", "password-1", "Watcher")
	other := first.Login(t, "watcher@example.test", "password-1")

	ws := first.DialWS(t, access)
	sub := ws.MustSubscribe(t, orderChanges, nil)
	otherWS := first.DialWS(t, other.AccessToken)
	otherWS.MustSubscribe(t, orderChanges, nil)
	if got := first.API.Auth.Watching(); got != 2 {
		t.Errorf("sessions watched on the first replica: %d; want 2", got)
	}

	logout(t, second, refreshToken)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	code, reason, err := ws.AwaitClose(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != graph.CloseSessionEnded || !strings.Contains(reason, "signed out") {
		t.Errorf("socket closed with %d %q; want %d and a reason saying the user was signed out", code, reason, graph.CloseSessionEnded)
	}
	if _, err := sub.Next(ctx); err == nil || errors.Is(err, apitest.ErrCompleted) {
		t.Errorf("the subscription after its socket closed: %v; want it ended with the socket, not completed", err)
	}

	// The other sign-in's socket still answers.
	q := otherWS.MustSubscribe(t, meQ, nil)
	var data struct{ Me user }
	if m, err := q.Next(ctx); err != nil {
		t.Errorf("the other sign-in's socket: %v; want it open", err)
	} else if err := m.Decode(&data); err != nil || data.Me.ID != other.User.ID {
		t.Errorf("me over the other socket: %+v, %v; want %s", data.Me, err, other.User.ID)
	}
	otherWS.Close()
	for first.API.Auth.Watching() != 0 {
		if ctx.Err() != nil {
			t.Fatalf("sessions watched after every socket closed: %d; want 0", first.API.Auth.Watching())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A subscription is closed with 4403 when its access token expires (ACCESS_TOKEN_TTL is short
// here), over either protocol, with a reason telling the client to refresh; a new token opens
// a new socket.
func TestSubscriptionEndsWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Second
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.AccessTokenTTL = ttl }))
	for _, protocol := range []string{apitest.TransportWS, apitest.LegacyWS} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			access, refreshToken, _ := s.Register(t, "expiring-"+protocol+"@example.test", "password-1", "Expiring")
			ws := s.DialWS(t, access, apitest.WithProtocol(protocol))
			ws.MustSubscribe(t, orderChanges, nil)

			ctx, cancel := context.WithTimeout(context.Background(), ttl+patience)
			defer cancel()
			code, reason, err := ws.AwaitClose(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if code != graph.CloseSessionEnded || !strings.Contains(reason, "expired") {
				t.Errorf("socket closed with %d %q; want %d and a reason saying the token expired", code, reason, graph.CloseSessionEnded)
			}
			next, r := refresh(t, s, refreshToken)
			if next == nil {
				t.Fatalf("refresh after expiry: %v", r.Codes())
			}
			s.DialWS(t, next.AccessToken, apitest.WithProtocol(protocol)).MustSubscribe(t, orderChanges, nil)
		})
	}
}

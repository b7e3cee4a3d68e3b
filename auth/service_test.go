package auth_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// env is a Service over fresh shards, with a statement counter on them.
type env struct {
	svc     *auth.Service
	users   *postgres.UserStore
	tokens  *postgres.TokenStore
	db      *postgres.DB
	counter *apitest.StatementCounter
	secret  []byte
}

func newEnv(t *testing.T) *env {
	t.Helper()
	counter := apitest.NewStatementCounter()
	db, _ := testenv.DB(t, 4, counter.Options())
	e := &env{users: postgres.NewUserStore(db), tokens: postgres.NewTokenStore(db), db: db, counter: counter, secret: randomSecret()}
	e.svc = e.service(t, auth.Config{})
	return e
}

// service returns another Service over the same stores and secret, with cfg's TTLs.
func (e *env) service(t *testing.T, cfg auth.Config) *auth.Service {
	t.Helper()
	cfg.Secret, cfg.BcryptCost = e.secret, bcrypt.MinCost
	svc, err := auth.NewService(e.users, e.tokens, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (e *env) register(t *testing.T, email, password string) *flashsale.AuthPayload {
	t.Helper()
	p, err := e.svc.Register(t.Context(), flashsale.RegisterInput{Email: email, Password: password, Name: "Test User"})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return p
}

func randomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := flashsale.ErrorCode(err); got != want {
		t.Errorf("%s: got code %q (%v), want %q", what, got, err, want)
	}
}

func TestLoginTouchesOneShard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, email := range []string{"one@example.com", "two@example.com", "three@example.com", "four@example.com"} {
		e.register(t, email, "password-1")
		e.counter.Reset()
		p, err := e.svc.Login(t.Context(), strings.ToUpper(email), "password-1")
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		shard := e.db.ShardOf(flashsale.EmailBucket(email))
		if got := e.db.ShardOf(p.User.ID.Bucket()); got != shard {
			t.Errorf("%s: user lives on shard %d; want its email's shard %d", email, got, shard)
		}
		// The user by email, then the new refresh token: two statements, both on that shard.
		want := make([]int, 4)
		want[shard] = 2
		if got := e.counter.Counts(); !slices.Equal(got, want) {
			t.Errorf("login %s: statements per shard got %v, want %v\n%s", email, got, want, e.counter)
		}
	}
}

func TestWrongPasswordAndUnknownEmailLookAlike(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "known@example.com", "right-password")
	tests := []struct{ name, email, password string }{
		{"wrong password", "known@example.com", "wrong-password"},
		{"unknown email", "unknown@example.com", "right-password"},
		{"empty password", "known@example.com", ""},
		{"empty email", "", "right-password"},
		{"overlong password", "known@example.com", strings.Repeat("p", 73)},
		{"overlong email", strings.Repeat("e", 300) + "@example.com", "right-password"},
	}
	var messages []string
	for _, tt := range tests {
		p, err := e.svc.Login(t.Context(), tt.email, tt.password)
		if p != nil {
			t.Errorf("%s: signed in; want refused", tt.name)
		}
		wantCode(t, tt.name, err, flashsale.EUNAUTHENTICATED)
		messages = append(messages, flashsale.ErrorMessage(err))
	}
	for i, m := range messages {
		if m != messages[0] {
			t.Errorf("%s: got message %q, want the same as %s: %q", tests[i].name, m, tests[0].name, messages[0])
		}
	}
	if _, err := e.svc.Login(t.Context(), " Known@Example.com ", "right-password"); err != nil {
		t.Errorf("login with the right password: %v", err)
	}
}

// Token is a JWT a test signs itself.
type token struct {
	method jwt.SigningMethod
	key    any
	claims jwt.MapClaims
}

func (tk token) sign(t *testing.T) string {
	t.Helper()
	s, err := jwt.NewWithClaims(tk.method, tk.claims).SignedString(tk.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// accessTokens returns a token signed here like the service signs its own, which must be
// accepted (so the bad ones are refused for their one fault, not for how they were made),
// and tokens that must all be refused, for the user and secret.
func accessTokens(t *testing.T, valid, userID string, secret []byte) (good string, bad map[string]string) {
	t.Helper()
	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": userID, "role": "CUSTOMER",
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		}
		if change != nil {
			change(c)
		}
		return c
	}
	hs256 := func(change func(jwt.MapClaims)) string {
		return token{jwt.SigningMethodHS256, secret, claims(change)}.sign(t)
	}
	parts := strings.Split(valid, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	adminPayload := base64.RawURLEncoding.EncodeToString(mustJSON(t, claims(func(c jwt.MapClaims) { c["role"] = "ADMIN" })))
	return hs256(nil), map[string]string{
		"empty":                  "",
		"garbage":                "not-a-jwt",
		"signature flipped":      parts[0] + "." + parts[1] + "." + flip(parts[2], len(parts[2])/2),
		"payload flipped":        parts[0] + "." + flip(parts[1], len(parts[1])/2) + "." + parts[2],
		"payload made admin":     parts[0] + "." + adminPayload + "." + parts[2],
		"signature stripped":     parts[0] + "." + parts[1] + ".",
		"expired":                hs256(func(c jwt.MapClaims) { c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Minute).Unix() }),
		"no expiry":              hs256(func(c jwt.MapClaims) { delete(c, "exp") }),
		"not yet valid":          hs256(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }),
		"wrong key":              token{jwt.SigningMethodHS256, randomSecret(), claims(nil)}.sign(t),
		"alg none":               token{jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)}.sign(t),
		"alg HS512, same secret": token{jwt.SigningMethodHS512, secret, claims(nil)}.sign(t),
		"wrong issuer":           hs256(func(c jwt.MapClaims) { c["iss"] = "someone-else" }),
		"no issuer":              hs256(func(c jwt.MapClaims) { delete(c, "iss") }),
		"wrong audience":         hs256(func(c jwt.MapClaims) { c["aud"] = []string{"another-api"} }),
		"no audience":            hs256(func(c jwt.MapClaims) { delete(c, "aud") }),
		"subject not a user id":  hs256(func(c jwt.MapClaims) { c["sub"] = "prd_12345" }),
		"unknown role":           hs256(func(c jwt.MapClaims) { c["role"] = "ROOT" }),
	}
}

func TestAuthenticateRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.register(t, "viewer@example.com", "password-1")

	v, err := e.svc.Authenticate(t.Context(), p.AccessToken)
	if err != nil || v.UserID != p.User.ID || v.Role != flashsale.RoleCustomer {
		t.Fatalf("valid token: got %+v, %v; want viewer %s CUSTOMER", v, err, p.User.ID)
	}
	good, bad := accessTokens(t, p.AccessToken, p.User.ID.String(), e.secret)
	if v, err := e.svc.Authenticate(t.Context(), good); err != nil || v.UserID != p.User.ID {
		t.Fatalf("token signed by the test: got %+v, %v; want viewer %s", v, err, p.User.ID)
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, err := e.svc.Authenticate(t.Context(), tok)
			wantCode(t, "Authenticate", err, flashsale.EUNAUTHENTICATED)
			if v != (flashsale.Viewer{}) {
				t.Errorf("got viewer %+v; want none", v)
			}
		})
	}
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.register(t, "rotate@example.com", "password-1")

	second, err := e.svc.Refresh(t.Context(), first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == first.RefreshToken {
		t.Errorf("refresh returned the spent refresh token; want a new one")
	}
	if second.User.ID != first.User.ID {
		t.Errorf("refresh signed in %s; want %s", second.User.ID, first.User.ID)
	}
	if v, err := e.svc.Authenticate(t.Context(), second.AccessToken); err != nil || v.UserID != first.User.ID {
		t.Errorf("new access token: got %+v, %v; want viewer %s", v, err, first.User.ID)
	}
	third, err := e.svc.Refresh(t.Context(), second.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the new token: %v", err)
	}
	if third.RefreshToken == second.RefreshToken || third.RefreshToken == first.RefreshToken {
		t.Errorf("third refresh token repeats an earlier one")
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	login := e.register(t, "reuse@example.com", "password-1")
	other, err := e.svc.Login(t.Context(), "reuse@example.com", "password-1") // another family
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := e.svc.Refresh(t.Context(), login.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}

	_, err = e.svc.Refresh(t.Context(), login.RefreshToken) // the spent token again: a theft
	wantCode(t, "reusing a spent refresh token", err, flashsale.EUNAUTHENTICATED)
	_, err = e.svc.Refresh(t.Context(), rotated.RefreshToken)
	wantCode(t, "the newer token of the reused family", err, flashsale.EUNAUTHENTICATED)
	if _, err := e.svc.Refresh(t.Context(), other.RefreshToken); err != nil {
		t.Errorf("a token of another family was refused (%v); only the reused family is revoked", err)
	}
}

func TestConcurrentRefreshesSpendOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	login := e.register(t, "race@example.com", "password-1")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = e.svc.Refresh(t.Context(), login.RefreshToken) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, "losing refresh", err, flashsale.EUNAUTHENTICATED)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes with one token succeeded; want exactly 1", ok, n)
	}
}

func TestRefreshRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	login := e.register(t, "refresh@example.com", "password-1")
	expired, err := e.service(t, auth.Config{RefreshTTL: -time.Minute}).Login(t.Context(), "refresh@example.com", "password-1")
	if err != nil {
		t.Fatal(err)
	}
	tok := login.RefreshToken
	bucket := tok[:strings.LastIndexByte(tok, '_')+1]
	tests := map[string]string{
		"empty":               "",
		"garbage":             "garbage",
		"access token":        login.AccessToken,
		"unknown secret":      bucket + "AAAAAAAAAAAAAAAAAAAAAAAAAA",
		"secret changed":      tok[:len(tok)-1] + map[bool]string{true: "B", false: "A"}[tok[len(tok)-1] == 'A'],
		"bucket out of range": "rt_1024_" + tok[len(bucket):],
		"negative bucket":     "rt_-1_" + tok[len(bucket):],
		"another bucket":      "rt_" + otherBucket(tok) + "_" + tok[len(bucket):],
		"overlong":            tok + strings.Repeat("A", 300),
		"expired":             expired.RefreshToken,
	}
	t.Run("tokens", func(t *testing.T) { // returns once its parallel subtests are done
		for name, tok := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p, err := e.svc.Refresh(t.Context(), tok)
				if p != nil {
					t.Errorf("refreshed; want refused")
				}
				wantCode(t, "Refresh", err, flashsale.EUNAUTHENTICATED)
			})
		}
	})
	// None of that disturbed the real token.
	if _, err := e.svc.Refresh(t.Context(), login.RefreshToken); err != nil {
		t.Errorf("the real refresh token after the bad ones: %v", err)
	}
}

func otherBucket(tok string) string {
	if strings.HasPrefix(tok, "rt_5_") {
		return "6"
	}
	return "5"
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()

	created, err := e.svc.EnsureAdmin(ctx, e.users, "boss@example.com", "boss-password")
	if err != nil {
		t.Fatalf("EnsureAdmin creating: %v", err)
	}
	e.counter.Reset()
	again, err := e.svc.EnsureAdmin(ctx, e.users, " Boss@Example.com", "boss-password")
	if err != nil {
		t.Fatalf("EnsureAdmin again: %v", err)
	}
	if again.ID != created.ID || again.Role != flashsale.RoleAdmin {
		t.Errorf("EnsureAdmin again: got %s %s; want %s ADMIN", again.ID, again.Role, created.ID)
	}
	if got := e.counter.Total(); got != 1 {
		t.Errorf("EnsureAdmin on a current admin sent %d statements; want 1 (a lookup, no write)\n%s", got, e.counter)
	}
	wantUsers(t, e, 1)
	p, err := e.svc.Login(ctx, "boss@example.com", "boss-password")
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	if v, err := e.svc.Authenticate(ctx, p.AccessToken); err != nil || v.Role != flashsale.RoleAdmin {
		t.Errorf("admin token: got %+v, %v; want role ADMIN", v, err)
	}
}

func TestEnsureAdminPromotesCustomer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	customer := e.register(t, "promoted@example.com", "old-password")

	admin, err := e.svc.EnsureAdmin(ctx, e.users, "promoted@example.com", "new-password")
	if err != nil {
		t.Fatalf("EnsureAdmin: %v", err)
	}
	if admin.ID != customer.User.ID || admin.Role != flashsale.RoleAdmin {
		t.Errorf("got %s %s; want the customer %s promoted to ADMIN", admin.ID, admin.Role, customer.User.ID)
	}
	stored, err := e.users.FindUserByID(ctx, customer.User.ID)
	if err != nil || stored.Role != flashsale.RoleAdmin {
		t.Errorf("stored user: got %+v, %v; want role ADMIN", stored, err)
	}
	wantUsers(t, e, 1)
	if _, err := e.svc.Login(ctx, "promoted@example.com", "old-password"); flashsale.ErrorCode(err) != flashsale.EUNAUTHENTICATED {
		t.Errorf("login with the old password: got %v; want UNAUTHENTICATED", err)
	}
	p, err := e.svc.Login(ctx, "promoted@example.com", "new-password")
	if err != nil {
		t.Fatalf("login with the admin password: %v", err)
	}
	if p.User.Role != flashsale.RoleAdmin {
		t.Errorf("signed in as %s; want ADMIN", p.User.Role)
	}
	if again, err := e.svc.EnsureAdmin(ctx, e.users, "promoted@example.com", "new-password"); err != nil || again.ID != admin.ID {
		t.Errorf("EnsureAdmin again: got %v, %v; want the same admin", again, err)
	}
	// The customer's sign-in, with its role and old password, is over.
	_, err = e.svc.Refresh(ctx, customer.RefreshToken)
	wantCode(t, "refresh with the customer's refresh token", err, flashsale.EUNAUTHENTICATED)
	_, err = e.svc.Authenticate(ctx, customer.AccessToken)
	wantCode(t, "the customer's access token", err, flashsale.EUNAUTHENTICATED)
	if _, err := e.svc.Refresh(ctx, p.RefreshToken); err != nil {
		t.Errorf("refresh with the admin's own sign-in after promotion: %v", err)
	}
	// A password change alone signs out too.
	if _, err := e.svc.EnsureAdmin(ctx, e.users, "promoted@example.com", "newer-password"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Authenticate(ctx, p.AccessToken)
	wantCode(t, "an access token won with the old password", err, flashsale.EUNAUTHENTICATED)
}

// Logging out revokes the token's whole family: neither it nor an earlier or later token of
// the family refreshes, and its access tokens are refused; other sign-ins are untouched. Any
// other token logs out without an error, so the answer tells nothing.
func TestLogoutRevokesTheFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	first := e.register(t, "leaving@example.com", "password-1")
	second, err := e.svc.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := e.svc.Login(ctx, "leaving@example.com", "password-1")
	if err != nil {
		t.Fatal(err)
	}

	if err := e.svc.Logout(ctx, first.RefreshToken); err != nil { // the spent one names the family too
		t.Fatalf("logout: %v", err)
	}
	_, err = e.svc.Refresh(ctx, second.RefreshToken)
	wantCode(t, "refresh with the family's live token after logout", err, flashsale.EUNAUTHENTICATED)
	for name, tok := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
		_, err := e.svc.Authenticate(ctx, tok)
		wantCode(t, "the family's "+name+" access token after logout", err, flashsale.EUNAUTHENTICATED)
	}
	if _, err := e.svc.Authenticate(ctx, elsewhere.AccessToken); err != nil {
		t.Errorf("another sign-in's access token after logout: %v", err)
	}
	if _, err := e.svc.Refresh(ctx, elsewhere.RefreshToken); err != nil {
		t.Errorf("another sign-in's refresh token after logout: %v", err)
	}
	for name, tok := range map[string]string{
		"again": first.RefreshToken, "garbage": "garbage", "empty": "",
		"unknown": "rt_3_AAAAAAAAAAAAAAAAAAAAAAAAAA", "access token": elsewhere.AccessToken,
	} {
		if err := e.svc.Logout(ctx, tok); err != nil {
			t.Errorf("logout with %s token: %v; want no error", name, err)
		}
	}
}

// However concurrent spends of one token interleave, and however a logout interleaves with a
// refresh, what is left is what a client may rely on: after a reuse or a logout no token of
// the family refreshes and none of its access tokens is accepted.
func TestRacesLeaveNoLiveTokenOfARevokedFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.register(t, "racer@example.com", "password-1")
	const rounds, spenders = 50, 3
	for round := range rounds {
		login, err := e.svc.Login(ctx, "racer@example.com", "password-1")
		if err != nil {
			t.Fatal(err)
		}
		logout := round%2 == 1 // odd rounds race a logout against one refresh
		results := make([]*flashsale.AuthPayload, spenders)
		var wg sync.WaitGroup
		for i := range spenders {
			wg.Go(func() {
				if logout && i > 0 {
					if err := e.svc.Logout(ctx, login.RefreshToken); err != nil {
						t.Errorf("logout: %v", err)
					}
					return
				}
				results[i], _ = e.svc.Refresh(ctx, login.RefreshToken)
			})
		}
		wg.Wait()
		won := 0
		for _, p := range results {
			if p == nil {
				continue
			}
			won++
			if _, err := e.svc.Refresh(ctx, p.RefreshToken); err == nil {
				t.Fatalf("round %d (logout %v): a successor refreshed after its family was revoked", round, logout)
			}
			if _, err := e.svc.Authenticate(ctx, p.AccessToken); err == nil {
				t.Fatalf("round %d (logout %v): a successor's access token is accepted after its family was revoked", round, logout)
			}
		}
		if won > 1 {
			t.Fatalf("round %d: %d refreshes with one token succeeded; want at most 1", round, won)
		}
	}
}

func wantUsers(t *testing.T, e *env, want int) {
	t.Helper()
	counts, err := e.users.CountUsersByShard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, c := range counts {
		got += c
	}
	if got != want {
		t.Errorf("%d users stored; want %d", got, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

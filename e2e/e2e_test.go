// Package e2e_test drives the whole API over HTTP, as a frontend would: each test starts the
// real server on fresh shards (internal/apitest) and checks the public contract (the
// README's settings, errors and operations). Every response of every test is also checked by apitest.CheckErrors:
// each error carries an extensions.code from the contract's list.
package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/internal/apitest"
)

// Product is a product as the API shows it.
type Product struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	PriceCents  int    `json:"priceCents"`
	Stock       int    `json:"stock"`
}

// productFields selects a Product but its stock. Stock is read from the product's pool in
// Redis, which the first read of a new product builds, and TestAdminManagesCatalog covers
// it; the other tests leave it out to stay quick.
const (
	productFields   = `id name description priceCents`
	productAndStock = productFields + ` stock`
)

// customer registers a new customer and returns their access token.
func customer(t testing.TB, s *apitest.Server, email string) string {
	t.Helper()
	access, _, _ := s.Register(t, email, "customer-password", "Customer")
	return access
}

// createProduct creates a product as the admin (its Stock is not read back).
func createProduct(t testing.TB, s *apitest.Server, name string, priceCents, stock int) Product {
	t.Helper()
	var data struct{ CreateProduct Product }
	s.Do(t, s.AdminToken(t), `mutation($in: CreateProductInput!) { createProduct(input: $in) { `+productFields+` } }`,
		map[string]any{"in": map[string]any{"name": name, "description": "about " + name, "priceCents": priceCents, "stock": stock}}).
		MustData(t, &data)
	return data.CreateProduct
}

// wantRefused fails unless the response is an error and nothing else: a 4xx, or a 200 whose
// errors all have one of the codes, and never a 5xx, an internal error or a leak.
func wantRefused(t *testing.T, r *apitest.Response, codes ...string) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("got status %d; want a refusal, never a 5xx\nbody: %.2000s", r.Status, r.Body)
	}
	if r.Status == http.StatusOK && len(r.Errors) == 0 {
		t.Fatalf("got 200 without errors; want a refusal\nbody: %.2000s", r.Body)
	}
	for _, e := range r.Errors {
		code, _ := e.Extensions["code"].(string)
		if !slices.Contains(codes, code) {
			t.Errorf("got error %q with code %q (status %d); want one of %q", e.Message, code, r.Status, codes)
		}
	}
	wantNoLeak(t, r)
}

// leaks are what a message must never show: the internals of the server.
var leaks = []string{"panic", "goroutine", "runtime error", "pgx", "pgconn", "SQLSTATE",
	"sql:", "postgres", "redis", "amqp", ".go:", "/work/", "nil pointer"}

// wantNoLeak fails if any error message shows the server's internals.
func wantNoLeak(t *testing.T, r *apitest.Response) {
	t.Helper()
	for _, e := range r.Errors {
		for _, leak := range leaks {
			if strings.Contains(strings.ToLower(e.Message), strings.ToLower(leak)) {
				t.Errorf("error message %.300q shows %q", e.Message, leak)
			}
		}
	}
}

// signToken signs claims with the method and key, as an attacker or a broken client might.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badTokens returns access tokens the server must refuse, forged for the user.
func badTokens(t *testing.T, s *apitest.Server, valid, userID string) map[string]string {
	t.Helper()
	now := time.Now()
	secret := []byte(s.Config.JWTSecret)
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": userID, "role": "ADMIN",
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1 // still base64url, but a different signature
	return map[string]string{
		"tampered signature": parts[0] + "." + parts[1] + "." + string(sig),
		"tampered payload":   parts[0] + "." + base64JSON(t, claims(nil)) + "." + parts[2],
		"expired": signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-time.Minute).Unix()
		})),
		"wrong key":      signToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), claims(nil)),
		"alg none":       signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		"wrong issuer":   signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })),
		"wrong audience": signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "other-api" })),
		"garbage":        "garbage",
	}
}

func base64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// idNumber returns the number inside a public id such as "prd_123".
func idNumber(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id[strings.IndexByte(id, '_')+1:], 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return n
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// metric reads one unlabelled counter from the API's /metrics.
func metric(t *testing.T, s *apitest.Server, name string) int {
	t.Helper()
	r := s.Get(t, "/metrics")
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", sc.Text(), err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no %s:\n%s", name, r.Body)
	return 0
}

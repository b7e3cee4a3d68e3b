package e2e_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
)

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

func TestRegisterLoginMe(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	access, _, id := s.Register(t, "  Ada@Example.com ", "analytical-engine", " Ada Lovelace ")
	login := s.Login(t, "ada@example.com", "analytical-engine")
	if login.User.ID != id {
		t.Errorf("login signed in %s; want the registered %s", login.User.ID, id)
	}
	want := user{ID: id, Email: "ada@example.com", Name: "Ada Lovelace", Role: "CUSTOMER"}
	for name, token := range map[string]string{"register's token": access, "login's token": login.AccessToken} {
		var data struct{ Me *user }
		s.Do(t, token, `{ me { id email name role } }`, nil).MustData(t, &data)
		if data.Me == nil || *data.Me != want {
			t.Errorf("me with %s: got %+v, want %+v", name, data.Me, want)
		}
	}
	var anon struct{ Me *user }
	s.Do(t, "", `{ me { id } }`, nil).MustData(t, &anon)
	if anon.Me != nil {
		t.Errorf("me without a token: got %+v, want null", anon.Me)
	}
}

func TestRegisterRefusesTakenAndInvalidInput(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	s.Register(t, "taken@example.com", "password-1", "First")
	tests := []struct {
		name, email, password, userName string
		code                            string
	}{
		{"same email", "taken@example.com", "password-2", "Second", flashsale.ECONFLICT},
		{"email in another case", "TAKEN@Example.COM", "password-2", "Second", flashsale.ECONFLICT},
		{"email with spaces", "  taken@example.com\t", "password-2", "Second", flashsale.ECONFLICT},
		{"not an email", "taken-at-example.com", "password-2", "Second", flashsale.EINVALID},
		{"short password", "short@example.com", "1234567", "Second", flashsale.EINVALID},
		{"password over 72 bytes", "long@example.com", string(make([]byte, 73)), "Second", flashsale.EINVALID},
		{"blank name", "blank@example.com", "password-2", "   ", flashsale.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
				map[string]any{"in": map[string]any{"email": tt.email, "password": tt.password, "name": tt.userName}})
			r.WantCode(t, tt.code)
			wantNoLeak(t, r)
			if string(r.Data) != "null" {
				t.Errorf("got data %s; want null", r.Data)
			}
		})
	}
}

func TestLoginOverHTTPTouchesOneShard(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	emails := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
	for _, email := range emails {
		s.Register(t, email, "password-1", "Shopper")
	}
	for _, email := range emails {
		counter.Reset()
		s.Login(t, email, "password-1")
		touched := 0
		for _, n := range counter.Counts() {
			if n > 0 {
				touched++
			}
		}
		if touched != 1 {
			t.Errorf("login %s: statements per shard %v; want every statement on one shard\n%s", email, counter.Counts(), counter)
		}
	}
}

func TestWrongPasswordAndUnknownEmailLookAlike(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	s.Register(t, "known@example.com", "right-password", "Known")
	login := `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`
	wrong := s.Do(t, "", login, map[string]any{"e": "known@example.com", "p": "wrong-password"})
	unknown := s.Do(t, "", login, map[string]any{"e": "unknown@example.com", "p": "right-password"})
	wrong.WantCode(t, flashsale.EUNAUTHENTICATED)
	unknown.WantCode(t, flashsale.EUNAUTHENTICATED)
	if wrong.Errors[0].Message != unknown.Errors[0].Message {
		t.Errorf("wrong password says %q, unknown email says %q; want the same", wrong.Errors[0].Message, unknown.Errors[0].Message)
	}
}

func TestBadTokensAreRefused(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	access, _, id := s.Register(t, "holder@example.com", "password-1", "Holder")
	for name, token := range badTokens(t, s, access, id) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// What needs a viewer is refused whole, with 401.
			for _, query := range []string{`{ me { id } }`, `{ me { id } products { edges { node { id } } } }`,
				`mutation { createProduct(input: {name: "x", priceCents: 1, stock: 1}) { id } }`} {
				r := s.Do(t, token, query, nil)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s: got status %d, want 401", query, r.Status)
				}
				r.WantCode(t, flashsale.EUNAUTHENTICATED)
				if string(r.Data) != "" && string(r.Data) != "null" {
					t.Errorf("%s: got data %s; want none", query, r.Data)
				}
			}
			// The catalog is answered as to anyone, and nothing of the forged viewer leaks in.
			var data struct {
				Products struct {
					Edges []struct{ Node struct{ ID string } }
				}
			}
			s.Do(t, token, `{ products { edges { node { id } } } }`, nil).MustData(t, &data)
		})
	}
}

func TestRefreshTokenRotatesAndReuseRevokes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	_, refresh, id := s.Register(t, "rotating@example.com", "password-1", "Rotating")
	refreshQ := `mutation($t: String!) { refreshToken(refreshToken: $t) { ` + apitest.AuthFields + ` } }`

	var first struct{ RefreshToken apitest.Auth }
	s.Do(t, "", refreshQ, map[string]any{"t": refresh}).MustData(t, &first)
	if first.RefreshToken.RefreshToken == refresh || first.RefreshToken.User.ID != id {
		t.Fatalf("refresh: got token %q for %s; want a new token for %s", first.RefreshToken.RefreshToken, first.RefreshToken.User.ID, id)
	}
	var me struct{ Me user }
	s.Do(t, first.RefreshToken.AccessToken, `{ me { id } }`, nil).MustData(t, &me)
	if me.Me.ID != id {
		t.Errorf("me with the refreshed access token: got %s, want %s", me.Me.ID, id)
	}

	s.Do(t, "", refreshQ, map[string]any{"t": refresh}).WantCode(t, flashsale.EUNAUTHENTICATED)
	s.Do(t, "", refreshQ, map[string]any{"t": first.RefreshToken.RefreshToken}).WantCode(t, flashsale.EUNAUTHENTICATED)
}

func TestCatalogNeedsAdmin(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	product := createProduct(t, s, "Guarded", 100, 5)
	shopper := customer(t, s, "shopper@example.com")
	mutations := map[string]string{
		"createProduct": `mutation { createProduct(input: {name: "Sneaky", priceCents: 1, stock: 1}) { id } }`,
		"updateProduct": `mutation { updateProduct(id: ` + quote(product.ID) + `, input: {priceCents: 1}) { id } }`,
	}
	viewers := []struct {
		name, token, code string
	}{
		{"anonymous", "", flashsale.EUNAUTHENTICATED},
		{"customer", shopper, flashsale.EFORBIDDEN},
	}
	t.Run("refusals", func(t *testing.T) { // returns once its parallel subtests are done
		for op, m := range mutations {
			for _, v := range viewers {
				t.Run(op+" as "+v.name, func(t *testing.T) {
					t.Parallel()
					r := s.Do(t, v.token, m, nil)
					r.WantCode(t, v.code)
					if got, want := r.Errors[0].Path, []any{op}; !slices.Equal(got, want) {
						t.Errorf("error path %v; want %v", got, want)
					}
				})
			}
		}
	})
	var data struct {
		Products struct{ Edges []struct{ Node Product } }
	}
	s.Do(t, "", `{ products { edges { node { `+productFields+` } } } }`, nil).MustData(t, &data)
	if len(data.Products.Edges) != 1 || data.Products.Edges[0].Node != product {
		t.Errorf("catalog after refused mutations: %+v; want only %+v, unchanged", data.Products.Edges, product)
	}
}

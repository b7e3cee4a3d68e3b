package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
)

func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Persisted", 700, 3)
	query := `query ProductName($id: ID!) { product(id: $id) { name } }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	persisted := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
	vars := map[string]any{"id": p.ID}
	wantName := func(t *testing.T, r *apitest.Response) {
		t.Helper()
		var data struct{ Product struct{ Name string } }
		r.MustData(t, &data)
		if data.Product.Name != p.Name {
			t.Errorf("got product name %q, want %q", data.Product.Name, p.Name)
		}
	}

	// The hash alone, before the server has seen the query.
	r := s.Send(t, "", apitest.Request{Variables: vars, Extensions: persisted})
	r.WantCode(t, flashsale.EINVALID)
	if got, want := r.Errors[0].Message, "PersistedQueryNotFound"; got != want {
		t.Errorf("got message %q, want %q (clients look for it to resend the query)", got, want)
	}
	// The hash with the query registers it.
	wantName(t, s.Send(t, "", apitest.Request{Query: query, Variables: vars, Extensions: persisted}))
	// Now the hash alone works, over POST and over GET.
	wantName(t, s.Send(t, "", apitest.Request{Variables: vars, Extensions: persisted}))
	ext, _ := json.Marshal(persisted)
	vs, _ := json.Marshal(vars)
	get := s.HTTP(t, newRequest(t, http.MethodGet, "/query?extensions="+url.QueryEscape(string(ext))+"&variables="+url.QueryEscape(string(vs)), "", "", ""))
	wantName(t, get)

	// A hash that does not match its query is refused.
	other := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(make([]byte, 32))}}
	r = s.Send(t, "", apitest.Request{Query: query, Variables: vars, Extensions: other})
	wantRefused(t, r, flashsale.EINVALID)
	bad := map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": hash}}
	wantRefused(t, s.Send(t, "", apitest.Request{Variables: vars, Extensions: bad}), flashsale.EINVALID)
}

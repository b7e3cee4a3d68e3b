package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

const byFastPath = "flashsale_sold_out_fast_path_refusals_total"

// soldOutSale returns a sale of one unit, already sold, which this API has seen refuse.
func soldOutSale(t *testing.T, s *apitest.Server) string {
	t.Helper()
	saleID, _ := activeSale(t, s, "Gone", 1, 1)
	placeOrders(t, s, customer(t, s, testenv.Name()+"-first@example.test"), saleID, 1)
	return saleID
}

func placeVars(saleID string, quantity any, key any) map[string]any {
	return map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": quantity, "idempotencyKey": key}}
}

func TestTheBurstAfterASellOutIsAnsweredByTheFastPathAsGraphQLWould(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID := soldOutSale(t, s)
	aliased := `mutation Buy($order: PlaceFlashSaleOrderInput!) { mine: placeFlashSaleOrder(input: $order) { id status } }`
	for _, q := range []struct {
		query, operationName, variable string
	}{
		{placeInSale, "", "in"},
		{aliased, "Buy", "order"},
	} {
		send := func(token string) *apitest.Response {
			vars := placeVars(saleID, 1, testenv.Name())
			vars = map[string]any{q.variable: vars["in"]}
			return s.Send(t, token, apitest.Request{Query: q.query, OperationName: q.operationName, Variables: vars})
		}
		buyers := []string{customer(t, s, testenv.Name()+"-0@example.test"), customer(t, s, testenv.Name()+"-1@example.test"),
			customer(t, s, testenv.Name()+"-2@example.test"), customer(t, s, testenv.Name()+"-3@example.test")}
		before := metric(t, s, byFastPath)
		byGraphQL := send(buyers[0]) // learns the answer
		byGraphQL.WantCode(t, flashsale.ESOLDOUT)
		for _, buyer := range buyers[1:] {
			fast := send(buyer)
			if !bytes.Equal(fast.Body, byGraphQL.Body) || fast.Status != byGraphQL.Status ||
				fast.Header.Get("Content-Type") != byGraphQL.Header.Get("Content-Type") {
				t.Errorf("by the fast path: %d %s %s\nby GraphQL: %d %s %s", fast.Status, fast.Header.Get("Content-Type"), fast.Body,
					byGraphQL.Status, byGraphQL.Header.Get("Content-Type"), byGraphQL.Body)
			}
		}
		if got := metric(t, s, byFastPath) - before; got != 3 {
			t.Errorf("%s: %d of 3 repeated refusals answered by the fast path, want 3", q.query, got)
		}
	}
}

// Whatever the fast path is unsure of goes to GraphQL, which gives its own answer.
func TestRequestsTheFastPathCannotVouchForGetGraphQLsAnswer(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID := soldOutSale(t, s)
	buyer := customer(t, s, testenv.Name()+"@example.test")
	s.Do(t, buyer, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESOLDOUT) // learned
	openSale, _ := activeSale(t, s, "Still there", 10, 1)
	before := metric(t, s, byFastPath)

	for _, c := range []struct {
		name, token string
		vars        map[string]any
		want        string // code, or "" for an order
	}{
		{"no viewer", "", placeVars(saleID, 1, "k"), flashsale.EUNAUTHENTICATED},
		{"quantity 0", buyer, placeVars(saleID, 0, "k"), flashsale.EINVALID},
		{"quantity as a string", buyer, placeVars(saleID, "1", "k"), flashsale.ESOLDOUT}, // gqlgen reads "1" as an Int
		{"quantity past 32 bits", buyer, placeVars(saleID, int64(1)<<32, "k"), flashsale.EINVALID},
		{"an empty key", buyer, placeVars(saleID, 1, " "), flashsale.EINVALID},
		{"a null key", buyer, placeVars(saleID, 1, nil), flashsale.EINVALID},
		{"a malformed sale id", buyer, placeVars("sal_nope", 1, "k"), flashsale.EINVALID},
		{"an unknown input field", buyer, map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1,
			"idempotencyKey": "k", "coupon": "FREE"}}, flashsale.EINVALID},
		{"a field's name in another case", buyer, map[string]any{"in": map[string]any{"flashSaleID": saleID, "quantity": 1,
			"idempotencyKey": "k"}}, flashsale.EINVALID},
		{"a sale not sold out", buyer, placeVars(openSale, 1, testenv.Name()), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, c.token, placeInSale, c.vars)
			if c.want == "" {
				apitest.CheckErrors(t, r)
				return
			}
			r.WantCode(t, c.want)
		})
	}
	t.Run("a persisted query whose hash is not its text's", func(t *testing.T) {
		s.Send(t, buyer, apitest.Request{Query: placeInSale, Variables: placeVars(saleID, 1, "k"), Extensions: map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)},
		}}).WantCode(t, flashsale.EINVALID)
	})
	t.Run("a persisted query of another version", func(t *testing.T) {
		sum := sha256.Sum256([]byte(placeInSale))
		s.Send(t, buyer, apitest.Request{Query: placeInSale, Variables: placeVars(saleID, 1, "k"), Extensions: map[string]any{
			"persistedQuery": map[string]any{"version": "1", "sha256Hash": hex.EncodeToString(sum[:])},
		}}).WantCode(t, flashsale.EINVALID)
	})
	t.Run("a hash GraphQL has not kept", func(t *testing.T) {
		sum := sha256.Sum256([]byte(placeInSale + " "))
		r := s.Send(t, buyer, apitest.Request{Variables: placeVars(saleID, 1, "k"), Extensions: map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])},
		}})
		if len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" {
			t.Errorf("a hash never sent with its query: %s; want PersistedQueryNotFound", r.Body)
		}
	})
	t.Run("a text/plain body", func(t *testing.T) {
		body, _ := json.Marshal(apitest.Request{Query: placeInSale, Variables: placeVars(saleID, 1, "k")})
		req, _ := http.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+buyer)
		if r := s.HTTP(t, req); r.Status < 400 {
			t.Errorf("a text/plain body answered %d %s; want GraphQL's refusal", r.Status, r.Body)
		}
	})
	if got := metric(t, s, byFastPath) - before; got != 0 {
		t.Errorf("%d of these were answered by the fast path, want none", got)
	}
}

func TestUnitsThatComeBackAreSoldDespiteTheFastPath(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Returned", 1, 1)
	first := customer(t, s, testenv.Name()+"-first@example.test")
	orders := placeOrders(t, s, first, saleID, 1)
	late := customer(t, s, testenv.Name()+"-late@example.test")
	s.Do(t, late, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESOLDOUT)
	s.Do(t, late, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESOLDOUT)
	s.Do(t, first, `mutation($id: ID!) { cancelOrder(id: $id) { status } }`, map[string]any{"id": orders[0]}).
		MustData(t, &map[string]any{})
	// The memory of the sell-out ends when the stock bus hears the unit come back, or at the
	// latest when it lapses.
	waitUntil(t, "the returned unit sold", func() (bool, string) {
		r := s.Do(t, late, placeInSale, placeVars(saleID, 1, testenv.Name()))
		return len(r.Errors) == 0, strings.Join(r.Codes(), ",")
	})
}

func TestAskingForMoreThanIsLeftIsNotASellOut(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Few", 3, 3)
	buy := func(who string, quantity int) *apitest.Response {
		return s.Do(t, customer(t, s, testenv.Name()+"-"+who+"@example.test"), placeInSale, placeVars(saleID, quantity, testenv.Name()))
	}
	apitest.CheckErrors(t, buy("first", 2))
	tooMany := buy("greedy", 2)
	tooMany.WantCode(t, flashsale.ESOLDOUT)
	if msg := tooMany.Errors[0].Message; msg != "only 1 left" {
		t.Errorf("2 of the 1 left: %q, want \"only 1 left\"", msg)
	}
	apitest.CheckErrors(t, buy("last", 1)) // neither the checkout nor the fast path took it for a sell-out
	buy("late", 1).WantCode(t, flashsale.ESOLDOUT)
	later := buy("later", 1)
	later.WantCode(t, flashsale.ESOLDOUT)
	if msg := later.Errors[0].Message; msg != "sold out" {
		t.Errorf("after the sell-out: %q, want \"sold out\" (not the refusal of 2 replayed)", msg)
	}
	if got := metric(t, s, byFastPath); got != 1 {
		t.Errorf("%d refusals by the fast path, want 1 (the one after the sell-out had been answered by GraphQL)", got)
	}
}

// With the fast path off, nothing is refused from memory: every order after a sell-out is
// answered by GraphQL after asking Redis, and the fast path's counter is not served.
func TestWithoutTheSoldOutFastPathEveryOrderAsksRedis(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithOptions(func(o *app.Options) { o.NoSoldOutFastPath = true }))
	saleID := soldOutSale(t, s)
	late := customer(t, s, testenv.Name()+"-late@example.test")
	for range 3 {
		s.Do(t, late, placeInSale, placeVars(saleID, 1, testenv.Name())).WantCode(t, flashsale.ESOLDOUT)
	}
	if s.API.SoldOut != nil || s.API.Checkout.RemembersASellOut() {
		t.Errorf("with NoSoldOutFastPath: a sold-out memory %v, remembers a sell-out %v; want neither",
			s.API.SoldOut != nil, s.API.Checkout.RemembersASellOut())
	}
	if body := s.Get(t, "/metrics").Body; bytes.Contains(body, []byte(byFastPath)) {
		t.Errorf("with NoSoldOutFastPath: /metrics serves %s", byFastPath)
	}
}

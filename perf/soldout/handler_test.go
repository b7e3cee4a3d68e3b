package soldout

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/flashsale/flashsale"
)

// checkout is a Checkout that refuses from memory when refuses is set.
type checkout struct {
	refuses bool
	counted int
}

func (c *checkout) RemembersASellOut() bool { return c.refuses }
func (c *checkout) RefusesFromMemory(flashsale.SaleID, int, string) bool {
	return c.refuses
}
func (c *checkout) CountRefusedFromMemory(flashsale.SaleID) { c.counted++ }

// body is a request body already read, as graph's body limit leaves it.
type body struct{ *bytes.Reader }

func (b body) Bytes() []byte {
	all := make([]byte, b.Size())
	b.ReadAt(all, 0)
	return all
}
func (body) Close() error { return nil }

const placeQuery = `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`

// learnSoldOut has h's extension see GraphQL answer query SOLD_OUT, and returns the answer.
func learnSoldOut(t *testing.T, h *Handler, query string) []byte {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatal(err)
	}
	ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{RawQuery: query, Operation: doc.Operations[0]})
	resp := &graphql.Response{Data: json.RawMessage("null"), Errors: gqlerror.List{{
		Message: flashsale.ErrSoldOut.Message, Extensions: map[string]any{"code": flashsale.ESOLDOUT},
	}}}
	ext := h.Extension(GraphQL{}).(graphql.ResponseInterceptor)
	ext.InterceptResponse(ctx, func(context.Context) *graphql.Response { return resp })
	want, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func TestHandlerReplaysOnlyWhatItCanVouchFor(t *testing.T) {
	t.Parallel()
	sale := flashsale.SaleID(1).String()
	place := func(input map[string]any) string {
		b, _ := json.Marshal(map[string]any{"query": placeQuery, "variables": map[string]any{"in": input}})
		return string(b)
	}
	good := place(map[string]any{"flashSaleId": sale, "quantity": 1, "idempotencyKey": "k"})
	for _, c := range []struct {
		name     string
		body     string
		read     bool // the body was read already
		viewer   bool
		refuses  bool
		learned  bool
		replayed bool
	}{
		{"a learned order the checkout refuses", good, true, true, true, true, true},
		{"the checkout would not refuse it", good, true, true, false, true, false},
		{"nothing learned", good, true, true, true, false, false},
		{"anonymous", good, true, false, true, true, false},
		{"a body not read", good, false, true, true, true, false},
		{"an unknown field", `{"query":` + jsonString(placeQuery) + `,"variables":{"in":{"flashSaleId":"` + sale + `","quantity":1,"idempotencyKey":"k"}},"other":1}`, true, true, true, true, false},
		{"a quantity out of 32 bits", place(map[string]any{"flashSaleId": sale, "quantity": 1 << 40, "idempotencyKey": "k"}), true, true, true, true, false},
		{"an input field missing", place(map[string]any{"flashSaleId": sale, "quantity": 1}), true, true, true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			co := &checkout{refuses: c.refuses}
			h := NewHandler(co, nil)
			var want []byte
			if c.learned {
				want = learnSoldOut(t, h, placeQuery)
			}
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.Header.Set("Content-Type", "application/json")
			if c.read {
				r.Body = body{bytes.NewReader([]byte(c.body))}
			} else {
				r.Body = http.NoBody
			}
			if c.viewer {
				r = r.WithContext(flashsale.NewContextWithViewer(r.Context(), flashsale.Viewer{UserID: 1}))
			}
			passed := false
			w := httptest.NewRecorder()
			h.Serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true })).ServeHTTP(w, r)
			if passed == c.replayed {
				t.Fatalf("passed on to GraphQL: %v; want %v", passed, !c.replayed)
			}
			if !c.replayed {
				return
			}
			if got := w.Body.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("replayed %s; want GraphQL's %s", got, want)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q; want application/json", got)
			}
			if co.counted != 1 {
				t.Errorf("counted %d refusals; want 1", co.counted)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

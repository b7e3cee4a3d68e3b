package e2e_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/apitest"
)

func TestAdminManagesCatalog(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	admin := s.AdminToken(t)
	var create struct{ CreateProduct Product }
	s.Do(t, admin, `mutation($in: CreateProductInput!) { createProduct(input: $in) { `+productAndStock+` } }`,
		map[string]any{"in": map[string]any{"name": "Keyboard", "description": "about Keyboard", "priceCents": 12900, "stock": 50}}).
		MustData(t, &create)
	created := create.CreateProduct
	if created.ID == "" || created.Name != "Keyboard" || created.PriceCents != 12900 || created.Stock != 50 ||
		created.Description != "about Keyboard" {
		t.Fatalf("createProduct: got %+v", created)
	}

	updateQ := `mutation($id: ID!, $in: UpdateProductInput!) { updateProduct(id: $id, input: $in) { ` + productAndStock + ` } }`
	steps := []struct {
		name  string
		input map[string]any
		want  Product
	}{
		{"price only", map[string]any{"priceCents": 9900},
			Product{created.ID, "Keyboard", "about Keyboard", 9900, 50}},
		{"name and description", map[string]any{"name": "  Clicky keyboard ", "description": ""},
			Product{created.ID, "Clicky keyboard", "", 9900, 50}},
		{"stock", map[string]any{"stock": 7},
			Product{created.ID, "Clicky keyboard", "", 9900, 7}},
		{"nothing", map[string]any{},
			Product{created.ID, "Clicky keyboard", "", 9900, 7}},
	}
	for _, step := range steps {
		var data struct{ UpdateProduct Product }
		s.Do(t, admin, updateQ, map[string]any{"id": created.ID, "in": step.input}).MustData(t, &data)
		if data.UpdateProduct != step.want {
			t.Errorf("update %s: got %+v, want %+v", step.name, data.UpdateProduct, step.want)
		}
		var read struct{ Product *Product }
		s.Do(t, "", `query($id: ID!) { product(id: $id) { `+productAndStock+` } }`, map[string]any{"id": created.ID}).MustData(t, &read)
		if read.Product == nil || *read.Product != step.want {
			t.Errorf("product after update %s: got %+v, want %+v", step.name, read.Product, step.want)
		}
	}

	missing := fmt.Sprintf("prd_%d", idNumber(t, created.ID)+1)
	var none struct{ Product *Product }
	s.Do(t, "", `query($id: ID!) { product(id: $id) { id } }`, map[string]any{"id": missing}).MustData(t, &none)
	if none.Product != nil {
		t.Errorf("product(%s) that does not exist: got %+v, want null", missing, none.Product)
	}
	s.Do(t, admin, updateQ, map[string]any{"id": missing, "in": map[string]any{"priceCents": 1}}).WantCode(t, flashsale.ENOTFOUND)
}

func TestProductsPaginateAcrossShards(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	var want []Product
	shards := map[int]bool{}
	for i := 0; i < 13 || len(shards) < 4; i++ {
		if i > 200 {
			t.Fatalf("products reached only shards %v", shards)
		}
		p := createProduct(t, s, fmt.Sprintf("Product %02d", i), 100+i, i)
		want = append(want, p)
		shards[s.API.DB.ShardOf(flashsale.ProductID(idNumber(t, p.ID)).Bucket())] = true
	}
	slices.SortFunc(want, func(a, b Product) int { return cmp.Compare(idNumber(t, a.ID), idNumber(t, b.ID)) })

	query := `query($first: Int, $after: String) { products(first: $first, after: $after) {
		edges { cursor node { ` + productFields + ` } } pageInfo { hasNextPage endCursor } } }`
	t.Run("pages", func(t *testing.T) { // returns once its parallel subtests are done
		for _, first := range []int{1, 4, len(want), 50} {
			t.Run(fmt.Sprintf("first=%d", first), func(t *testing.T) {
				t.Parallel()
				var got []Product
				vars := map[string]any{"first": first}
				for page := 0; ; page++ {
					if page > len(want) {
						t.Fatalf("still paging after %d pages", page)
					}
					var data struct {
						Products struct {
							Edges []struct {
								Cursor string
								Node   Product
							}
							PageInfo struct {
								HasNextPage bool
								EndCursor   *string
							}
						}
					}
					s.Do(t, "", query, vars).MustData(t, &data)
					conn := data.Products
					if wantLen := min(first, len(want)-len(got)); len(conn.Edges) != wantLen {
						t.Fatalf("page %d: %d edges; want %d", page, len(conn.Edges), wantLen)
					}
					for _, e := range conn.Edges {
						got = append(got, e.Node)
					}
					if conn.PageInfo.EndCursor == nil || *conn.PageInfo.EndCursor != conn.Edges[len(conn.Edges)-1].Cursor {
						t.Fatalf("page %d: endCursor %v; want the last edge's cursor", page, conn.PageInfo.EndCursor)
					}
					if want := len(got) < len(want); conn.PageInfo.HasNextPage != want {
						t.Fatalf("page %d: hasNextPage %v; want %v", page, conn.PageInfo.HasNextPage, want)
					}
					if !conn.PageInfo.HasNextPage {
						break
					}
					vars = map[string]any{"first": first, "after": *conn.PageInfo.EndCursor}
				}
				if !slices.Equal(got, want) {
					t.Errorf("paged products:\n got %+v\nwant %+v (each once, in creation order)", got, want)
				}
			})
		}
	})

	// A page is one statement per shard, whatever its size.
	counter.Reset()
	s.Do(t, "", `{ products(first: 50) { edges { node { id name priceCents } } } }`, nil).MustData(t, &struct{}{})
	if got, want := counter.Counts(), []int{1, 1, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("statements per shard for a page: got %v, want %v\n%s", got, want, counter)
	}

	var empty struct {
		Products struct {
			Edges    []any
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	after := quote(lastCursor(t, s))
	s.Do(t, "", `{ products(after: `+after+`) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, nil).MustData(t, &empty)
	if len(empty.Products.Edges) != 0 || empty.Products.PageInfo.HasNextPage || empty.Products.PageInfo.EndCursor != nil {
		t.Errorf("page after the last product: got %+v; want no edges, no next page, null endCursor", empty.Products)
	}
}

func lastCursor(t *testing.T, s *apitest.Server) string {
	t.Helper()
	var data struct {
		Products struct{ PageInfo struct{ EndCursor string } }
	}
	s.Do(t, "", `{ products(first: 50) { pageInfo { endCursor } } }`, nil).MustData(t, &data)
	return data.Products.PageInfo.EndCursor
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

// shop speaks GraphQL to one API as its admin; the benchmarks set up their data through it,
// as a user of the public API would.
type shop struct {
	c     *loadgen.Client
	admin string // the admin's access token
	runID string // makes emails and idempotency keys unique to the run
}

// requestTimeout bounds one setup request.
const requestTimeout = 15 * time.Second

// newShop logs in as the admin at url.
func newShop(ctx context.Context, url, adminEmail, adminPassword, runID string, conns int) (*shop, error) {
	c, err := loadgen.NewClient(url, conns, requestTimeout)
	if err != nil {
		return nil, err
	}
	s := &shop{c: c, runID: runID}
	if s.admin, err = s.login(ctx, adminEmail, adminPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("log in as admin %s: %w", adminEmail, err)
	}
	return s, nil
}

func (s *shop) close() { s.c.Close() }

func (s *shop) login(ctx context.Context, email, password string) (string, error) {
	var out struct {
		Login struct {
			AccessToken string `json:"accessToken"`
		} `json:"login"`
	}
	err := s.c.Do(ctx, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": email, "p": password}, &out)
	if err == nil && out.Login.AccessToken == "" {
		err = errors.New("login answered without an access token")
	}
	return out.Login.AccessToken, err
}

// registerBuyers registers n customers named after tag, concurrency at a time, and returns
// their access tokens.
func (s *shop) registerBuyers(ctx context.Context, tag string, n, concurrency int) ([]string, error) {
	tokens := make([]string, n)
	var mu sync.Mutex
	var firstErr error
	loadgen.ForEach(ctx, n, concurrency, func(i int) {
		var out struct {
			Register struct {
				AccessToken string `json:"accessToken"`
			} `json:"register"`
		}
		email := fmt.Sprintf("bench-%s-%s-%d@example.com", s.runID, tag, i)
		err := s.c.Do(ctx, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			map[string]any{"in": map[string]any{"email": email, "password": "bench-password-" + s.runID, "name": "Bench " + tag}}, &out)
		if err == nil && out.Register.AccessToken == "" {
			err = errors.New("register answered without an access token")
		}
		if err != nil {
			mu.Lock()
			firstErr = cmpErr(firstErr, fmt.Errorf("register %s: %w", email, err))
			mu.Unlock()
			return
		}
		tokens[i] = out.Register.AccessToken
	})
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return tokens, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// createProduct creates a product with the stock and returns its id.
func (s *shop) createProduct(ctx context.Context, name string, stock int) (string, error) {
	var out struct {
		CreateProduct struct {
			ID string `json:"id"`
		} `json:"createProduct"`
	}
	err := s.c.Do(ctx, s.admin, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{
			"name": name, "description": "A product the benchmarks read and sell.", "priceCents": 1999, "stock": stock,
		}}, &out)
	if err != nil {
		return "", fmt.Errorf("create product %q: %w", name, err)
	}
	return out.CreateProduct.ID, nil
}

// createSale creates a flash sale of the product, open from startsAt for an hour.
func (s *shop) createSale(ctx context.Context, productID string, quantity, perUserLimit int, startsAt time.Time) (string, error) {
	var out struct {
		CreateFlashSale struct {
			ID string `json:"id"`
		} `json:"createFlashSale"`
	}
	startsAt = startsAt.UTC().Truncate(time.Second)
	err := s.c.Do(ctx, s.admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`,
		map[string]any{"in": map[string]any{
			"productId": productID, "salePriceCents": 999, "quantity": quantity, "perUserLimit": perUserLimit,
			"startsAt": startsAt.Format(time.RFC3339), "endsAt": startsAt.Add(time.Hour).Format(time.RFC3339),
		}}, &out)
	if err != nil {
		return "", fmt.Errorf("create flash sale of %s: %w", productID, err)
	}
	return out.CreateFlashSale.ID, nil
}

// placeOrder buys one unit of a product (saleID "") or of a flash sale, and returns the
// order's id.
func (s *shop) placeOrder(ctx context.Context, token, productID, saleID, key string) (string, error) {
	var out struct {
		PlaceOrder struct {
			ID string `json:"id"`
		} `json:"placeOrder"`
		PlaceFlashSaleOrder struct {
			ID string `json:"id"`
		} `json:"placeFlashSaleOrder"`
	}
	var err error
	if saleID == "" {
		err = s.c.Do(ctx, token, `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"productId": productID, "quantity": 1, "idempotencyKey": key}}, &out)
	} else {
		err = s.c.Do(ctx, token, `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": key}}, &out)
	}
	if err != nil {
		return "", err
	}
	if id := out.PlaceOrder.ID + out.PlaceFlashSaleOrder.ID; id != "" {
		return id, nil
	}
	return "", errors.New("order placed without an id")
}

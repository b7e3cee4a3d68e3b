package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// buyer is a customer registered for the run, and the client it sends from.
type buyer struct {
	email  string
	token  string
	client *Client
}

// sale is the flash sale the run opened.
type sale struct {
	ID       string
	StartsAt time.Time
}

const loginMutation = `mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken }
}`

// login returns an access token for the account.
func login(ctx context.Context, c *Client, email, password string) (string, error) {
	var out struct {
		Login struct {
			AccessToken string `json:"accessToken"`
		} `json:"login"`
	}
	if err := c.Do(ctx, "", loginMutation, map[string]any{"email": email, "password": password}, &out); err != nil {
		return "", err
	}
	if out.Login.AccessToken == "" {
		return "", errors.New("login answered without an access token")
	}
	return out.Login.AccessToken, nil
}

const registerMutation = `mutation($input: RegisterInput!) {
  register(input: $input) { accessToken }
}`

// registerTries bounds the tries of one registration.
const registerTries = 4

// registerBuyers registers cfg.Buyers customers with RegisterConcurrency requests in flight,
// keeping the access token of each register answer. One buyer that cannot be registered
// fails the run.
func registerBuyers(ctx context.Context, c *Client, cfg Config, progress io.Writer) ([]buyer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	buyers := make([]buyer, cfg.Buyers)
	password := "lg-password-" + cfg.RunID
	var (
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	start := time.Now()
	stop := Ticker(progress, func() string {
		n := done.Load()
		return fmt.Sprintf("register: %d/%d buyers (%.0f/s)", n, cfg.Buyers, perSecond(int(n), time.Since(start)))
	})
	ForEach(ctx, cfg.Buyers, cfg.RegisterConcurrency, func(i int) {
		email := fmt.Sprintf("lg-%s-%d@example.com", cfg.RunID, i)
		bc := c.From(Address(i)).As(cfg.Shapes[i%len(cfg.Shapes)])
		token, err := register(ctx, bc, email, password, fmt.Sprintf("Loadgen Buyer %d", i))
		if err != nil {
			errOnce.Do(func() {
				firstErr = fmt.Errorf("register buyer %s: %w", email, err)
				cancel()
			})
			return
		}
		buyers[i] = buyer{email: email, token: token, client: bc}
		done.Add(1)
	})
	stop()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("register buyers: %w", err)
	}
	return buyers, nil
}

// register signs one buyer up, retrying what may pass on a second try. When a retry finds
// the email taken, an earlier try went through unseen, and the buyer logs in instead.
func register(ctx context.Context, c *Client, email, password, name string) (string, error) {
	vars := map[string]any{"input": map[string]any{"email": email, "password": password, "name": name}}
	var err error
	for try := range registerTries {
		if try > 0 && !Sleep(ctx, time.Duration(125<<try)*time.Millisecond) {
			return "", ctx.Err()
		}
		var out struct {
			Register struct {
				AccessToken string `json:"accessToken"`
			} `json:"register"`
		}
		err = c.Do(ctx, "", registerMutation, vars, &out)
		switch code := ErrorCode(err); {
		case err == nil && out.Register.AccessToken != "":
			return out.Register.AccessToken, nil
		case err == nil:
			return "", errors.New("register answered without an access token")
		case code == "CONFLICT" && try > 0:
			return login(ctx, c, email, password)
		case !retryable(code):
			return "", err
		}
	}
	return "", err
}

// retryable reports whether a failure with the code may pass on another try.
func retryable(code string) bool {
	switch code {
	case CodeTransport, CodeTimeout, CodeBadResponse, "RATE_LIMITED", "INTERNAL":
		return true
	}
	return len(code) > 5 && code[:5] == "HTTP_"
}

const createProductMutation = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) { id }
}`

const createSaleMutation = `mutation($input: CreateFlashSaleInput!) {
  createFlashSale(input: $input) { id startsAt }
}`

// Prices of the run's product and sale, in cents.
const (
	productPriceCents = 1999
	salePriceCents    = 999
)

// createSale creates a product and a flash sale of it starting StartDelay from now, rounded
// up to a whole second so the RFC 3339 time needs no fraction.
func createSale(ctx context.Context, c *Client, admin string, cfg Config) (sale, error) {
	var p struct {
		CreateProduct struct {
			ID string `json:"id"`
		} `json:"createProduct"`
	}
	err := c.Do(ctx, admin, createProductMutation, map[string]any{"input": map[string]any{
		"name":        "Loadgen " + cfg.RunID,
		"description": "Flash-sale load test product.",
		"priceCents":  productPriceCents,
		"stock":       cfg.Quantity,
	}}, &p)
	if err != nil {
		return sale{}, fmt.Errorf("create product: %w", err)
	}
	startsAt := time.Now().Add(cfg.StartDelay).Truncate(time.Second).Add(time.Second).UTC()
	var s struct {
		CreateFlashSale struct {
			ID       string    `json:"id"`
			StartsAt time.Time `json:"startsAt"`
		} `json:"createFlashSale"`
	}
	err = c.Do(ctx, admin, createSaleMutation, map[string]any{"input": map[string]any{
		"productId":      p.CreateProduct.ID,
		"salePriceCents": salePriceCents,
		"quantity":       cfg.Quantity,
		"perUserLimit":   cfg.PerUserLimit,
		"startsAt":       startsAt.Format(time.RFC3339),
		"endsAt":         startsAt.Add(cfg.SaleDuration).Format(time.RFC3339),
	}}, &s)
	if err != nil {
		return sale{}, fmt.Errorf("create flash sale of product %s: %w", p.CreateProduct.ID, err)
	}
	got := sale{ID: s.CreateFlashSale.ID, StartsAt: s.CreateFlashSale.StartsAt}
	if got.StartsAt.IsZero() {
		got.StartsAt = startsAt
	}
	return got, nil
}

const saleQuery = `query($id: ID!) { flashSale(id: $id) { remaining quantity status } }`

// saleView is what flashSale(id) says about the run's sale.
type saleView struct {
	Remaining int    `json:"remaining"`
	Quantity  int    `json:"quantity"`
	Status    string `json:"status"`
}

// saleState reads the sale.
func saleState(ctx context.Context, c *Client, token, id string) (saleView, error) {
	var out struct {
		FlashSale *saleView `json:"flashSale"`
	}
	if err := c.Do(ctx, token, saleQuery, map[string]any{"id": id}, &out); err != nil {
		return saleView{}, err
	}
	if out.FlashSale == nil {
		return saleView{}, fmt.Errorf("flashSale(%s) is null", id)
	}
	return *out.FlashSale, nil
}

// activeWait bounds how long after its start time a sale may take to show ACTIVE.
const activeWait = 5 * time.Second

// waitForStart sleeps until the sale's start, then polls its status until it is ACTIVE, for
// at most activeWait; a sale that is still not ACTIVE by then gets the burst anyway, which
// will count what the API answers.
func waitForStart(ctx context.Context, c *Client, admin string, s sale, progress io.Writer) error {
	if !Sleep(ctx, time.Until(s.StartsAt)) {
		return fmt.Errorf("wait for sale %s to start: %w", s.ID, ctx.Err())
	}
	deadline := time.Now().Add(activeWait)
	for {
		st, err := saleState(ctx, c, admin, s.ID)
		if err == nil && st.Status == "ACTIVE" {
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(progress, "sale %s is not ACTIVE %s after its start (status %q, err %v); bursting anyway\n", s.ID, activeWait, st.Status, err)
			return nil
		}
		if !Sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("wait for sale %s to start: %w", s.ID, ctx.Err())
		}
	}
}

const typenameQuery = `{ __typename }`

// warm opens the pool's connections before the burst, so it does not pay for them.
func warm(ctx context.Context, c *Client, conns int) {
	ForEach(ctx, conns, conns, func(int) { _ = c.Do(ctx, "", typenameQuery, nil, nil) })
}

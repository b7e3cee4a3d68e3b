package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Codes for answers that carry no extensions.code, counted beside the contract's codes.
const (
	// CodeTransport: no HTTP answer (the API is down or restarting). Retried.
	CodeTransport = "TRANSPORT"
	// CodeBadAnswer: an answer that is not a GraphQL response, or an error without a code.
	CodeBadAnswer = "BAD_ANSWER"
)

// answer is what one request got.
type answer struct {
	code       string // "" for success
	message    string
	retryAfter time.Duration // extensions.retryAfter, when the error carried one
	data       json.RawMessage
}

// buyerClient speaks GraphQL to whichever API the stack serves at the moment of each
// request, as a buyer behind a load balancer would. Unlike apitest's client it never fails
// the test: a refused or unanswered request is an answer to count.
type buyerClient struct {
	url  func() string
	http *http.Client
}

func newBuyerClient(url func() string, conns int) *buyerClient {
	return &buyerClient{url: url, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
		},
	}}
}

func (c *buyerClient) close() { c.http.CloseIdleConnections() }

// do posts a query as the buyer (token may be ""), from the client address addr: each
// buyer has an address of its own, as an ingress would pass it, so that limits per address
// see many buyers rather than one.
func (c *buyerClient) do(ctx context.Context, token, addr, query string, vars map[string]any) answer {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return answer{code: CodeBadAnswer, message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url()+"/query", bytes.NewReader(body))
	if err != nil {
		return answer{code: CodeBadAnswer, message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{code: CodeTransport, message: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{code: CodeTransport, message: err.Error()}
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code       string   `json:"code"`
				RetryAfter *float64 `json:"retryAfter"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return answer{code: fmt.Sprintf("HTTP_%d", resp.StatusCode), message: truncate(raw)}
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		a := answer{code: e.Extensions.Code, message: e.Message}
		if a.code == "" {
			a.code = CodeBadAnswer
		}
		if e.Extensions.RetryAfter != nil {
			a.retryAfter = time.Duration(*e.Extensions.RetryAfter * float64(time.Second))
		}
		return a
	}
	if resp.StatusCode != http.StatusOK {
		return answer{code: fmt.Sprintf("HTTP_%d", resp.StatusCode), message: truncate(raw)}
	}
	return answer{data: r.Data}
}

// decode reads a successful answer's data into v.
func (a answer) decode(v any) error {
	if a.code != "" {
		return fmt.Errorf("%s: %s", a.code, a.message)
	}
	if len(a.data) == 0 || string(a.data) == "null" {
		return errors.New("answer without data")
	}
	return json.Unmarshal(a.data, v)
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// sleep waits d or until ctx ends, and reports whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Codes for failures that carry no GraphQL extensions.code. They are counted beside the
// contract's codes (SOLD_OUT, LIMIT_EXCEEDED, …) in Result.Rejections.
const (
	// CodeTransport: no HTTP answer (connection refused or reset, DNS, TLS).
	CodeTransport = "TRANSPORT"
	// CodeTimeout: no answer within the request timeout.
	CodeTimeout = "TIMEOUT"
	// CodeBadResponse: a 200 answer that is not a GraphQL JSON response. A non-JSON answer
	// with another status is counted as HTTP_<status> instead (HTTP_502, HTTP_503, …).
	CodeBadResponse = "BAD_RESPONSE"
	// CodeNoCode: a GraphQL error without extensions.code, which the contract forbids.
	CodeNoCode = "NO_CODE"
	// CodeCanceled: the caller's context was canceled before the answer came.
	CodeCanceled = "CANCELED"
)

// maxBody bounds how much of a response is read.
const maxBody = 8 << 20

// Error is a failed GraphQL call: the extensions.code and message of the first GraphQL error
// of the response, or one of the Code* constants above when there was none.
type Error struct {
	Code    string
	Message string
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Err is the transport error behind a CodeTransport, CodeTimeout or CodeCanceled.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("graphql: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
	}
	return fmt.Sprintf("graphql: %s: %s", e.Code, e.Message)
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of err: the Code of an *Error in its chain, "" for nil, and
// CodeTransport for any other error.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case isError(err, &e):
		return e.Code
	}
	return CodeTransport
}

// isError is errors.As for *Error, without its reflection when err is one itself (as every
// error of Do is): the burst asks for the code of each of its thousands of refusals.
func isError(err error, e **Error) bool {
	if direct, ok := err.(*Error); ok {
		*e = direct
		return true
	}
	return errors.As(err, e)
}

// Client sends GraphQL operations to one endpoint over one shared, pooled http.Client, as a
// plain POST unless As gives it a client library's Shape.
//
// Every request carries an X-Forwarded-For, as the ingress in front of a shop would add, so
// that the shop (which believes it from the loopback, its default TRUSTED_PROXIES) sees each
// client at an address of its own and applies its per-address rate limits as it would to a
// crowd: a client made by From sends its one address, and any other sends each request from
// the next of crowdSize addresses of 10.128.0.0/9, in turn.
type Client struct {
	endpoint string
	http     *http.Client
	from     string         // this client's address, or "" for the crowd
	crowd    *atomic.Uint32 // the crowd's last address, shared by the clients From makes
	shape    Shape          // how operations are sent (As)
}

// From returns a client sharing c's connections whose requests all come from addr.
func (c *Client) From(addr string) *Client {
	cp := *c
	cp.from = addr
	return &cp
}

// Address is the client address of buyer i: 10.0.0.1 for 0, and on through 10.127.255.255,
// written as text as X-Forwarded-For carries it.
func Address(i int) string {
	return ipv4(10<<24 | 1 + uint32(i)%(1<<23-1))
}

// crowdSize is how many visitors the anonymous requests (the floor's among them) come from:
// a crowd the size of a sale's, whose every visitor stays within the per-address budget at
// the floor's rate. An address of its own for each request instead would have the shop
// remember hundreds of thousands of visitors no real sale brings.
const crowdSize = 4096

// crowdAddress is the address of the crowd's n-th request, in 10.128.0.0/9, apart from the
// buyers'.
func crowdAddress(n uint32) string { return ipv4(10<<24 | 1<<23 | n%crowdSize) }

func ipv4(a uint32) string {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
}

// NewClient returns a client for the /query endpoint of baseURL (which may already end in
// /query), with connections pooled for conns concurrent requests and each request bounded
// by timeout. It refuses any host but the loopback: a load generator must never be pointed
// at a machine it does not own.
func NewClient(baseURL string, conns int, timeout time.Duration) (*Client, error) {
	endpoint, err := queryEndpoint(baseURL)
	if err != nil {
		return nil, err
	}
	if conns < 1 {
		conns = 1
	}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy from the environment: straight to the target
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{
		endpoint: endpoint,
		http: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A redirect could lead off the loopback; take the 3xx as the answer instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		crowd: new(atomic.Uint32),
	}, nil
}

// Endpoint returns the URL operations are posted to.
func (c *Client) Endpoint() string { return c.endpoint }

// Close drops the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// queryEndpoint checks that raw is an http(s) URL on the loopback and returns its /query URL.
func queryEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("url %q: want an http:// or https:// URL", raw)
	}
	if !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("url %q: host %q is not the loopback; loadgen only targets this machine", raw, u.Hostname())
	}
	if !strings.HasSuffix(u.Path, "/query") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/query"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type gqlRequest struct {
	Query     string `json:"query"`
	Variables any    `json:"variables,omitempty"`
}

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// Do sends query with vars (anything that encodes to a JSON object, or nil for none), with
// the bearer token unless it is "", and decodes the response's
// data into out (unless out is nil). A response with errors returns an *Error carrying the
// first one's extensions.code; so does a failure to get an answer, with a Code* constant.
func (c *Client) Do(ctx context.Context, token, query string, vars any, out any) error {
	req, err := c.newRequest(ctx, query, vars)
	if err != nil {
		return err
	}
	if c.from != "" {
		req.Header.Set("X-Forwarded-For", c.from)
	} else {
		req.Header.Set("X-Forwarded-For", crowdAddress(c.crowd.Add(1)))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	// Drain what is left so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return transportError(ctx, err)
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		code := CodeBadResponse
		if resp.StatusCode != http.StatusOK {
			code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
		}
		return &Error{Code: code, Status: resp.StatusCode, Message: fmt.Sprintf("not a GraphQL response: %s", snippet(raw))}
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		code := e.Extensions.Code
		if code == "" {
			code = CodeNoCode
		}
		return &Error{Code: code, Status: resp.StatusCode, Message: e.Message}
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Status: resp.StatusCode, Message: fmt.Sprintf("status %d without errors: %s", resp.StatusCode, snippet(raw))}
	}
	if out == nil {
		return nil
	}
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return &Error{Code: CodeBadResponse, Status: resp.StatusCode, Message: "response has neither data nor errors"}
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return &Error{Code: CodeBadResponse, Status: resp.StatusCode, Message: fmt.Sprintf("decode data: %v", err)}
	}
	return nil
}

// transportError classifies an error from sending a request or reading its answer.
func transportError(ctx context.Context, err error) error {
	code := CodeTransport
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		code = CodeCanceled
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		code = CodeTimeout
	}
	return &Error{Code: code, Message: err.Error(), Err: err}
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

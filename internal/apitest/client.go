package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// Request is a GraphQL request as POST /query takes it.
type Request struct {
	Query         string         `json:"query,omitempty"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// Error is one GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Response is an HTTP answer, read as a GraphQL response when its body is JSON.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// JSON reports whether Body was a JSON object; Data and Errors are empty otherwise.
	JSON   bool
	Data   json.RawMessage
	Errors []Error
}

// Codes returns the extensions.code of every error, in order ("" for an error without one).
func (r *Response) Codes() []string {
	codes := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		codes[i], _ = e.Extensions["code"].(string)
	}
	return codes
}

// MustData fails the test unless the response is a 200 without errors, and decodes its data
// into v.
func (r *Response) MustData(t testing.TB, v any) {
	t.Helper()
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("apitest: got status %d, errors %s; want 200 without errors\nbody: %s", r.Status, r.errorList(), truncate(r.Body))
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("apitest: decode data %s: %v", truncate(r.Data), err)
	}
}

// WantCode fails the test unless the response carries exactly one error, with the code.
func (r *Response) WantCode(t testing.TB, want string) {
	t.Helper()
	if got := r.Codes(); !slices.Equal(got, []string{want}) {
		t.Fatalf("apitest: got codes %q (status %d, errors %s); want [%q]", got, r.Status, r.errorList(), want)
	}
}

func (r *Response) errorList() string {
	var b strings.Builder
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "[%v %q path=%v] ", e.Extensions["code"], e.Message, e.Path)
	}
	return b.String()
}

// ContractCodes are the error codes of the public contract, the only ones a response may carry.
var ContractCodes = []string{
	flashsale.EUNAUTHENTICATED, flashsale.EFORBIDDEN, flashsale.EINVALID, flashsale.ENOTFOUND,
	flashsale.ECONFLICT, flashsale.ESOLDOUT, flashsale.ESALENOTACTIVE, flashsale.ELIMITEXCEEDED,
	flashsale.ERATELIMITED, flashsale.ECOMPLEXITY, flashsale.EUNAVAILABLE, flashsale.EINTERNAL,
}

// CheckErrors fails the test for any error of r that breaks the contract: one without an
// extensions.code from the contract's list, or an INTERNAL one whose message says more than
// "internal error". Every request a Server sends is checked with it.
func CheckErrors(t testing.TB, r *Response) {
	t.Helper()
	for _, e := range r.Errors {
		code, _ := e.Extensions["code"].(string)
		if !slices.Contains(ContractCodes, code) {
			t.Errorf("apitest: error %q has extensions.code %q; want one of %q", e.Message, code, ContractCodes)
		}
		if code == flashsale.EINTERNAL && e.Message != "internal error" {
			t.Errorf("apitest: INTERNAL error has message %q; want %q", e.Message, "internal error")
		}
	}
}

// Do POSTs a query with its variables to /query, with the bearer token unless it is "".
func (s *Server) Do(t testing.TB, token, query string, vars map[string]any) *Response {
	t.Helper()
	return s.Send(t, token, Request{Query: query, Variables: vars})
}

// Send POSTs a request to /query, with the bearer token unless it is "".
func (s *Server) Send(t testing.TB, token string, req Request) *Response {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("apitest: encode request: %v", err)
	}
	return s.Post(t, token, "application/json", body)
}

// Post POSTs a raw body to /query: for bodies that are not valid requests.
func (s *Server) Post(t testing.TB, token, contentType string, body []byte) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(t, req)
}

// Get GETs a path, such as "/healthz".
func (s *Server) Get(t testing.TB, path string) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return s.do(t, req)
}

// HTTP sends any request (another method, other headers) and reads the answer as Post does.
// Its URL may be a path, such as "/query?query=...", which is resolved against the server's.
func (s *Server) HTTP(t testing.TB, req *http.Request) *Response {
	t.Helper()
	if req.URL.Host == "" {
		u, err := url.Parse(s.URL + req.URL.String())
		if err != nil {
			t.Fatalf("apitest: %v", err)
		}
		req.URL, req.Host = u, u.Host
	}
	return s.do(t, req)
}

func (s *Server) do(t testing.TB, req *http.Request) *Response {
	t.Helper()
	resp, err := s.client.http.Do(req)
	if err != nil {
		t.Fatalf("apitest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("apitest: read the answer to %s %s: %v", req.Method, req.URL.Path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	var gql struct {
		Data   json.RawMessage `json:"data"`
		Errors []Error         `json:"errors"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && json.Unmarshal(body, &gql) == nil {
		r.JSON, r.Data, r.Errors = true, gql.Data, gql.Errors
	}
	CheckErrors(t, r)
	return r
}

// Auth is what register, login and refreshToken answer.
type Auth struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Name  string `json:"name"`
		Role  string `json:"role"`
	} `json:"user"`
}

// AuthFields selects an Auth.
const AuthFields = `accessToken refreshToken user { id email name role }`

// Register signs a new customer up through the API and returns their tokens and id.
func (s *Server) Register(t testing.TB, email, password, name string) (access, refresh, userID string) {
	t.Helper()
	var data struct{ Register Auth }
	s.Do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { `+AuthFields+` } }`,
		map[string]any{"in": map[string]any{"email": email, "password": password, "name": name}}).MustData(t, &data)
	return data.Register.AccessToken, data.Register.RefreshToken, data.Register.User.ID
}

// Login signs in through the API.
func (s *Server) Login(t testing.TB, email, password string) Auth {
	t.Helper()
	var data struct{ Login Auth }
	s.Do(t, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { `+AuthFields+` } }`,
		map[string]any{"e": email, "p": password}).MustData(t, &data)
	return data.Login
}

// AdminToken returns an access token of the admin account.
func (s *Server) AdminToken(t testing.TB) string {
	t.Helper()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.adminTok == "" {
		s.adminTok = s.Login(t, AdminEmail, AdminPassword).AccessToken
	}
	return s.adminTok
}

// client is the server's HTTP client; its idle connections are closed with the server.
type client struct{ http *http.Client }

func newClient() *client {
	return &client{http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

func (c *client) close() { c.http.CloseIdleConnections() }

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Shape is how a client sends an operation over HTTP: the defaults of a frontend client
// library, so that the load is what a shop's pages send and the server's fast paths (the
// sold-out fast path, the response cache) are measured for those requests.
type Shape int

const (
	// Plain is a POST of {query, variables} with Accept application/json: what the API's own
	// tools send.
	Plain Shape = iota
	// Apollo is Apollo Client 4's HttpLink: a POST of {operationName, variables, extensions,
	// query} with extensions.clientLibrary, and Accept
	// application/graphql-response+json,application/json;q=0.9.
	Apollo
	// URQL is urql 6: a query as a GET with its fields in the URL (a POST past urql's URL
	// limit), a mutation as a POST of {query, variables}, and Accept
	// application/graphql-response+json, application/graphql+json, application/json, ….
	URQL
)

// DefaultShapes are the shapes a run sends, buyer by buyer and read by read in turn.
var DefaultShapes = []Shape{Apollo, URQL}

// Accept headers and the body extension of the client libraries.
const (
	apolloAccept = "application/graphql-response+json,application/json;q=0.9"
	urqlAccept   = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
	// urqlMaxURL is the URL length past which urql sends a query as POST.
	urqlMaxURL = 2048
)

// String names the shape as the bench's output does.
func (s Shape) String() string {
	switch s {
	case Plain:
		return "plain POST"
	case Apollo:
		return "Apollo Client 4 (POST, its Accept, extensions.clientLibrary)"
	case URQL:
		return "urql 6 (queries as GET, its Accept)"
	}
	return fmt.Sprintf("Shape(%d)", int(s))
}

// Describe names shapes for a report: "Apollo Client 4 (…) and urql 6 (…)".
func Describe(shapes []Shape) string {
	names := make([]string, len(shapes))
	for i, s := range shapes {
		names[i] = s.String()
	}
	return strings.Join(names, " and ")
}

// As returns a client sharing c's connections that sends every operation in shape s.
func (c *Client) As(s Shape) *Client {
	cp := *c
	cp.shape = s
	return &cp
}

// Shaped returns a client of c for each shape (one Plain client for none), to send request i
// with the i-th modulo their number.
func (c *Client) Shaped(shapes []Shape) []*Client {
	if len(shapes) == 0 {
		return []*Client{c.As(Plain)}
	}
	out := make([]*Client, len(shapes))
	for i, s := range shapes {
		out[i] = c.As(s)
	}
	return out
}

type apolloRequest struct {
	OperationName *string          `json:"operationName"` // the operations here are anonymous: null
	Variables     any              `json:"variables"`
	Extensions    apolloExtensions `json:"extensions"`
	Query         string           `json:"query"`
}

type apolloExtensions struct {
	ClientLibrary struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"clientLibrary"`
}

var apolloLibrary = func() (e apolloExtensions) {
	e.ClientLibrary.Name, e.ClientLibrary.Version = "@apollo/client", "4.0.7"
	return e
}()

// newRequest builds the HTTP request of one operation in the client's shape.
func (c *Client) newRequest(ctx context.Context, query string, vars any) (*http.Request, error) {
	var body any = gqlRequest{Query: query, Variables: vars}
	accept := "application/json"
	switch c.shape {
	case Apollo:
		if vars == nil {
			vars = struct{}{} // HttpLink sends {} for none
		}
		body, accept = apolloRequest{Variables: vars, Extensions: apolloLibrary, Query: query}, apolloAccept
	case URQL:
		accept = urqlAccept
		if isQuery(query) {
			target := c.endpoint + "?query=" + url.QueryEscape(query)
			if vars != nil {
				v, err := json.Marshal(vars)
				if err != nil {
					return nil, fmt.Errorf("encode variables: %w", err)
				}
				target += "&variables=" + url.QueryEscape(string(v))
			}
			if len(target) <= urqlMaxURL {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if err != nil {
					return nil, fmt.Errorf("new request: %w", err)
				}
				req.Header.Set("Accept", accept)
				return req, nil
			}
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	return req, nil
}

// isQuery reports whether a document's operation is a query: it does not start with
// "mutation" or "subscription".
func isQuery(doc string) bool {
	doc = strings.TrimSpace(doc)
	return !strings.HasPrefix(doc, "mutation") && !strings.HasPrefix(doc, "subscription")
}

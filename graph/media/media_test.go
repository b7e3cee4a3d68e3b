package media

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/flashsale/flashsale/graph/generated"
)

// The responses the server writes itself must carry the Content-Type gqlgen's transports
// choose for the same Accept header: this asks gqlgen for each.
func TestResponseMediaTypeIsGqlgens(t *testing.T) {
	t.Parallel()
	srv := handler.New(generated.NewExecutableSchema(generated.Config{}))
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.GET{})
	for _, accept := range []string{
		"", "*/*", "application/json", "application/graphql-response+json", ApolloAccept, URQLAccept,
		"application/*", "text/html", "text/html, application/json", "application/json;q=0.1, application/graphql-response+json",
		"APPLICATION/JSON", "application/graphql-response+json; charset=utf-8", "application/json;;", "text/event-stream, */*;q=0.5",
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			var r *http.Request
			if method == http.MethodPost {
				r = httptest.NewRequest(method, "/query", strings.NewReader(`{"query":"{ __typename }"}`))
				r.Header.Set("Content-Type", "application/json")
			} else {
				r = httptest.NewRequest(method, "/query?query=%7B+__typename+%7D", nil)
			}
			if accept != "" {
				r.Header.Set("Accept", accept)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if got, want := ResponseType(accept), w.Header().Get("Content-Type"); got != want {
				t.Errorf("%s with Accept %q: ResponseType = %q, gqlgen answers %q", method, accept, got, want)
			}
		}
	}
}

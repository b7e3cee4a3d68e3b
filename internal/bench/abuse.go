package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Probe is a request built to exhaust the API, one of those a hostile anonymous client sent
// in the issue "The front door holds against the internet". The API must refuse each with
// COMPLEXITY_LIMIT_EXCEEDED or BAD_USER_INPUT before the expensive work, keeping nothing;
// the cost of refusing it belongs beside the floor ({ __typename }).
type Probe struct {
	Name string
	// Query is the document; Extensions, when set, carry its persisted-query hash.
	Query      string
	Extensions map[string]any
}

// Body returns the probe as a POST /query body.
func (p Probe) Body() []byte {
	b, err := json.Marshal(map[string]any{"query": p.Query, "extensions": p.Extensions})
	if err != nil {
		panic(err) // strings and maps of strings always marshal
	}
	return b
}

// Hash returns the persisted-query hash the probe carries, "" for none.
func (p Probe) Hash() string {
	pq, _ := p.Extensions["persistedQuery"].(map[string]any)
	h, _ := pq["sha256Hash"].(string)
	return h
}

// AbuseProbes returns one of each probe:
//   - introspection-aliases: 3,000 aliases of __schema, each walking every type through the
//     introspection query's fragments, tens of megabytes of answer without the limits;
//   - typename-flood: { __typename } repeated 80,000 times, a megabyte, which validation
//     would compare pair by pair;
//   - login-aliases: a mutation of 29 aliased logins, 29 bcrypt checks, just under the
//     complexity limit;
//   - large-persisted-query: a 700 kB document sent with its persisted-query hash, which must
//     not be kept unless it parses and passes the limits (LargePersistedQuery makes distinct
//     ones).
//
// The first two are refused for their size alone; three smaller ones of the same kinds pass
// the size limits and are refused by the limits that parse and measure the document:
//   - introspection-aliases-small: 400 aliases of __schema (16 kB), by the selections limit;
//   - typename-flood-small: __typename 1,500 times (17 kB), by the same-named pairs limit;
//   - token-flood: a field of one letter 6,000 times (12 kB), by the token limit.
func AbuseProbes() []Probe {
	introspectionAliases := func(n int) string {
		var b strings.Builder
		b.WriteString("query {")
		for i := range n {
			fmt.Fprintf(&b, " a%d: __schema { types { ...FullType } }", i)
		}
		b.WriteString(" }\n")
		b.WriteString(introspectionFragments)
		return b.String()
	}

	var logins strings.Builder
	logins.WriteString("mutation {")
	for i := range 29 {
		fmt.Fprintf(&logins, ` a%d: login(email: "victim@example.com", password: "guess-%d") { accessToken }`, i, i)
	}
	logins.WriteString(" }")

	return []Probe{
		{Name: "introspection-aliases", Query: introspectionAliases(3000)},
		{Name: "typename-flood", Query: "{" + strings.Repeat(" __typename", 80_000) + " }"},
		{Name: "login-aliases", Query: logins.String()},
		LargePersistedQuery(0),
		{Name: "introspection-aliases-small", Query: introspectionAliases(400)},
		{Name: "typename-flood-small", Query: "{" + strings.Repeat(" __typename", 1500) + " }"},
		{Name: "token-flood", Query: "{" + strings.Repeat(" a", 6000) + " }"},
	}
}

// LargePersistedQuery returns the i-th of distinct 700 kB documents, each sent with its
// persisted-query hash.
func LargePersistedQuery(i int) Probe {
	var b strings.Builder
	fmt.Fprintf(&b, "query Q%d {", i)
	for j := 0; b.Len() < 700_000; j++ {
		fmt.Fprintf(&b, " a%d: __typename", j)
	}
	b.WriteString(" }")
	q := b.String()
	sum := sha256.Sum256([]byte(q))
	return Probe{
		Name:       "large-persisted-query",
		Query:      q,
		Extensions: map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}},
	}
}

// IntrospectionQuery is the query GraphiQL (the playground) sends when it opens: graphql-js's
// getIntrospectionQuery with every option on. The limits must let it through.
const IntrospectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types {
      ...FullType
    }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) {
        ...InputValue
      }
    }
  }
}

` + introspectionFragments

const introspectionFragments = `fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) {
      ...InputValue
    }
    type {
      ...TypeRef
    }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) {
    ...InputValue
  }
  interfaces {
    ...TypeRef
  }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes {
    ...TypeRef
  }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
`

package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// persistedQueries serves automatic persisted queries (Apollo's protocol, as gqlgen's
// extension.AutomaticPersistedQuery does): a request may send only the sha256 hash of a
// query the server has seen. Unlike gqlgen's extension, which keeps every query sent with
// a matching hash before it is even parsed, it keeps a query only once the request has
// passed parsing, validation and every limit (record, the last of the operation context
// mutators): a client cannot fill the store with documents the server refuses.
type persistedQueries struct{ cache *byteCache[string] }

// pendingQuery marks, in the operation's stats, a query sent with its hash, to be kept
// once it has passed.
type pendingQuery struct{ hash string }

const pendingQueryKey = "PersistedQuery"

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persistedQueries{}

func (persistedQueries) ExtensionName() string                   { return "PersistedQueries" }
func (persistedQueries) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters puts the kept query in place of a hash sent alone, and checks
// the hash of a query sent with one.
func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	ext, ok := params.Extensions["persistedQuery"].(map[string]any)
	if !ok {
		if params.Extensions["persistedQuery"] != nil {
			return gqlerror.Errorf("invalid APQ extension data")
		}
		return nil
	}
	hash, _ := ext["sha256Hash"].(string)
	if !isOne(ext["version"]) {
		return gqlerror.Errorf("unsupported APQ version")
	}
	if params.Query == "" {
		query, ok := p.cache.Get(ctx, hash)
		if !ok {
			// Clients look for this message to send the query with its hash.
			err := gqlerror.Errorf("PersistedQueryNotFound")
			errcode.Set(err, "PERSISTED_QUERY_NOT_FOUND")
			return err
		}
		params.Query = query
		return nil
	}
	sum := sha256.Sum256([]byte(params.Query))
	if hex.EncodeToString(sum[:]) != hash {
		return gqlerror.Errorf("provided APQ hash does not match query")
	}
	graphql.GetOperationContext(ctx).Stats.SetExtension(pendingQueryKey, pendingQuery{hash})
	return nil
}

// record returns the extension that keeps a query sent with its hash; it must be used after
// every other operation context mutator that may refuse the operation.
func (p persistedQueries) record() graphql.HandlerExtension { return recordPersisted(p) }

type recordPersisted persistedQueries

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = recordPersisted{}

func (recordPersisted) ExtensionName() string                   { return "PersistedQueriesRecord" }
func (recordPersisted) Validate(graphql.ExecutableSchema) error { return nil }

func (r recordPersisted) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if q, ok := oc.Stats.GetExtension(pendingQueryKey).(pendingQuery); ok {
		r.cache.Add(ctx, q.hash, oc.RawQuery)
	}
	return nil
}

// isOne reports whether a JSON number is 1, however the transport decoded it.
func isOne(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return v.String() == "1"
	case float64:
		return v == 1
	case int:
		return v == 1
	case int64:
		return v == 1
	}
	return false
}

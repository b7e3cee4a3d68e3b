package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
)

// byteCache is a least-recently-used cache bounded by the bytes of what it holds, not by
// its entries: a count alone lets a client that sends large distinct documents fill the
// memory. An entry larger than the whole budget is not kept. It serves as gqlgen's
// parsed-query cache and as the persisted queries' store.
type byteCache[T any] struct {
	max  int
	size func(key string, v T) int

	mu    sync.Mutex
	lru   *simplelru.LRU[string, T]
	bytes int
}

var _ graphql.Cache[string] = (*byteCache[string])(nil)

// newByteCache returns a cache of at most maxBytes, as size counts them.
func newByteCache[T any](maxBytes int, size func(key string, v T) int) *byteCache[T] {
	c := &byteCache[T]{max: maxBytes, size: size}
	// The entry count is bounded by the bytes: every entry costs at least its key.
	lru, err := simplelru.NewLRU(max(maxBytes, 1), func(k string, v T) { c.bytes -= c.size(k, v) })
	if err != nil {
		panic(err) // only for a size below 1
	}
	c.lru = lru
	return c
}

// Get returns the value of key and marks it recently used.
func (c *byteCache[T]) Get(_ context.Context, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(key)
}

// Contains reports whether key is kept, without marking it used.
func (c *byteCache[T]) Contains(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Contains(key)
}

// Add keeps v under key, evicting the least recently used entries until it fits.
func (c *byteCache[T]) Add(_ context.Context, key string, v T) {
	n := c.size(key, v)
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(key) // its bytes leave through the eviction callback
	for c.bytes+n > c.max {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
	c.lru.Add(key, v)
	c.bytes += n
}

// Bytes returns the bytes held.
func (c *byteCache[T]) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len returns the entries held.
func (c *byteCache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// entryOverhead is what keeping an entry costs besides its key and value: the list element,
// the map slot and the string headers.
const entryOverhead = 128

// queryBytes is what a persisted query costs: its hash and its text.
func queryBytes(hash, query string) int { return len(hash) + len(query) + entryOverhead }

// tokenBytes is what a parsed and validated document holds on the heap for each of its
// tokens, besides its text: its nodes and their positions. It is a little over what this
// schema's documents hold (BenchmarkDocumentBytes); comments, counted too, hold nothing.
const tokenBytes = 128

// documentBytes is what a parsed document costs: its text, which its key and every
// position share, and what its tokens became. Counting the tokens again costs a fraction of
// the parse, once for each document kept.
func documentBytes(query string, _ *ast.QueryDocument) int {
	return len(query) + tokenBytes*countTokens(query) + entryOverhead
}

// countTokens counts the tokens of a document the parser accepted.
func countTokens(query string) int {
	l := lexer.New(&ast.Source{Input: query})
	n := 0
	for {
		tok, err := l.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return n
		}
		n++
	}
}

// Package graph serves the GraphQL API over HTTP and websockets: the gqlgen handler with its
// transports, caches, limits and error presenter, the auth middleware and directives, and the
// health and metrics endpoints. Two optional shortcuts, installed in front of GraphQL, replay
// bytes GraphQL produced: the response cache (perf/responsecache) and the sold-out fast path
// (perf/soldout). Every response the package writes itself uses the media type GraphQL would
// choose (media/). Rate limits (package ratelimit) are spent in this process before the
// shortcuts and in Redis only once GraphQL is about to run (ratelimit.go). generated/ and
// model/ are gqlgen's output (`make generate`), but for model/node.go.
package graph

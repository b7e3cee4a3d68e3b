// Package graph serves the GraphQL API over HTTP and websockets: the gqlgen handler with its
// transports, caches, limits and error presenter, the auth middleware and directives, and the
// health and metrics endpoints. Two shortcuts answer without running GraphQL: the response
// cache (whole answers to public product and sale reads) and the sold-out fast path
// (perf/soldout: the burst of placeFlashSaleOrder after a sell-out), each replaying bytes
// GraphQL produced, for the
// requests frontend clients send (POST and GET, their Accept headers and extensions). Every
// response the package writes itself uses the media type GraphQL would choose for the
// request's Accept (media.go). A refused bearer token leaves public reads anonymous and
// refuses the rest (staletoken.go). The rate
// limits (package ratelimit) are applied around them: every request's client, known by its
// viewer or by its address (ClientAddress), spends its budget in this process before them
// and in Redis only after them, when GraphQL is about to run (ratelimit.go). The code under
// generated/ and model/ is gqlgen's output and is never edited by hand (`make generate`),
// but for model/node.go, the Go type gqlgen.yml binds the schema's Node interface to.
package graph

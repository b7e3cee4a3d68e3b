// Package soldout is the sold-out fast path: once a flash sale sells out, the burst of orders
// that follows is refused from this process's memory instead of a Redis round trip each, and
// the API answers most of them before running GraphQL at all.
//
// Memory holds the pools that answered SOLD_OUT; Watch subscribes to their stock events so that
// a mark is cleared as soon as units come back (a cancel or an expiry); Handler replays
// GraphQL's own SOLD_OUT answer to a repeated placeFlashSaleOrder, learning it from GraphQL
// through its extension. All of it is optional: without it every attempt asks Redis.
package soldout

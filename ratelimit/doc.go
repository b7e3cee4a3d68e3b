// Package ratelimit decides whether a client may go on: per signed-in viewer, per client
// address, per account, with a budget for each kind of work (requests, orders, password
// checks, websocket connections, subscriptions).
//
// Each check is made twice. A limiter in this process, with the same budget, refuses a flood
// from one key without asking anyone; what it lets through is then counted by the shared
// limiter in Redis, so that a client spreading its requests over every replica meets one
// budget. While Redis cannot be reached the process limits on its own, which at worst lets a
// key through once per replica, and never refuses a buyer because a dependency is down.
package ratelimit

// Package flashsale holds the shop's domain: users, products, flash sales and orders, the
// interfaces of the services that act on them, and the one error type every layer speaks.
//
// It imports none of the adapters under stores/ nor the GraphQL layer under graph/; they import
// it. Reading this package tells what the shop does; reading the adapters tells how.
package flashsale

package model

// Node is what the schema's Node interface holds: a *flashsale.User, *flashsale.Product,
// *flashsale.FlashSale or *flashsale.Order. Those are domain types, which know nothing of
// GraphQL, so the interface asks nothing of them; gqlgen's generated code tells them apart.
type Node any

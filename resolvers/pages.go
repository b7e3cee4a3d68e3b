package resolvers

import (
	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/model"
)

// page turns one page of nodes into a connection's edges and its PageInfo: each edge's cursor
// is its node's id, and the page's first and last cursors are its start and end. paged says
// whether the page came after a cursor (hasPreviousPage).
func page[N, E any](nodes []N, more, paged bool, id func(N) string, edge func(cursor string, n N) E) ([]E, *model.PageInfo) {
	info := &model.PageInfo{HasNextPage: more, HasPreviousPage: paged}
	edges := make([]E, len(nodes))
	cursors := make([]string, len(nodes))
	for i, n := range nodes {
		cursors[i] = encodeCursor(id(n))
		edges[i] = edge(cursors[i], n)
	}
	if len(nodes) > 0 {
		info.StartCursor, info.EndCursor = &cursors[0], &cursors[len(cursors)-1]
	}
	return edges, info
}

// ordersConnection is a page of orders as an OrderConnection.
func ordersConnection(orders []*flashsale.Order, more, paged bool) *model.OrderConnection {
	edges, info := page(orders, more, paged, func(o *flashsale.Order) string { return o.ID.String() },
		func(c string, o *flashsale.Order) *model.OrderEdge { return &model.OrderEdge{Cursor: c, Node: o} })
	return &model.OrderConnection{Edges: edges, PageInfo: info}
}

// Package media negotiates the Content-Type of GraphQL responses over HTTP.
package media

import (
	"mime"
	"strings"
)

// The media types of a GraphQL response over HTTP (GraphQL over HTTP). Apollo Client 4 and
// urql 6 ask for application/graphql-response+json first; a browser's fetch sends */*.
const (
	JSON            = "application/json"
	GraphQLResponse = "application/graphql-response+json"
)

// The Accept headers the frontend clients send by default, answered without parsing.
const (
	ApolloAccept = "application/graphql-response+json,application/json;q=0.9"
	URQLAccept   = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
)

// ResponseType is the Content-Type gqlgen's POST and GET transports answer a request
// whose Accept header is accept with: the first of its media types that is application/json,
// application/graphql-response+json or a wildcard (application/json), and
// application/graphql-response+json when none is; like gqlgen, it does not weigh q-values.
// Every response the server writes itself (an error before GraphQL, a cached response, a
// sold-out refusal) answers with it, so that a client gets the type it asked for whoever
// answers.
func ResponseType(accept string) string {
	switch accept {
	case "", "*/*", JSON:
		return JSON
	case GraphQLResponse, ApolloAccept, URQLAccept:
		return GraphQLResponse
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", JSON:
			return JSON
		case GraphQLResponse:
			return GraphQLResponse
		}
	}
	return GraphQLResponse
}

// IsJSONBody reports whether contentType is one gqlgen's POST transport reads.
func IsJSONBody(contentType string) bool {
	if contentType == JSON {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == JSON
}

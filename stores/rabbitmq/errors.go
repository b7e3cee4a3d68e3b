package rabbitmq

import "errors"

// Errors a Publish may wrap besides connection and context errors. Every Publish error
// means some messages may not have reached a queue: publish them all again.
var (
	// ErrClosed is returned by a Publisher's methods after Close.
	ErrClosed = errors.New("rabbitmq: publisher is closed")
	// ErrNacked means the broker refused a message, for instance a full queue with
	// reject-publish overflow.
	ErrNacked = errors.New("rabbitmq: broker nacked the message")
	// ErrUnroutable means no queue is bound for a message's routing key, so the broker
	// returned it: retrying will not help until the topology is declared.
	ErrUnroutable = errors.New("rabbitmq: no queue is bound for the message")
	// ErrBlocked means the broker blocks publishers (connection.blocked, under a memory or
	// disk alarm): Publish sent nothing, since nothing sent would be read until the alarm
	// clears.
	ErrBlocked = errors.New("rabbitmq: the broker blocks publishers")
)

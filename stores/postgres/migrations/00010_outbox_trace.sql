-- The W3C trace context (traceparent) of the request that wrote each event, so that the relay
-- and the workers continue the request's trace. Empty when the request was not traced. A
-- constant default makes the new column a change of the catalog only, whatever the table's
-- size.

-- +goose Up
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_parent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN IF EXISTS trace_parent;

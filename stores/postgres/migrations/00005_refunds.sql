-- Refunds: a cancelled or expired order that was charged is refunded, exactly once.
--
-- The mock gateway's ledger learns two things a real gateway offers: voiding an order's
-- payment (a charge asked for later is refused, so an order that ended unpaid stays unpaid)
-- and refunding an approved charge, once, for no more than was charged. The order records
-- when its payment was settled after it ended, and whether that settlement was a refund.

-- +goose Up
ALTER TABLE charges DROP CONSTRAINT charges_outcome_check;
ALTER TABLE charges ADD CONSTRAINT charges_outcome_check CHECK (outcome IN ('APPROVED', 'DECLINED', 'VOIDED'));

-- One refund per order, ever: the primary key refuses a second.
CREATE TABLE refunds (
    order_id     BIGINT PRIMARY KEY REFERENCES charges (order_id),
    bucket       SMALLINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_bucket ON refunds (bucket);

-- settled_at: when the payment of a cancelled or expired order was settled (refunded, or
-- found never charged); refunded_at: set with it when the settlement was a refund;
-- settle_requested_at: when the sweeper last asked again for a settlement that is overdue.
ALTER TABLE orders ADD COLUMN settled_at TIMESTAMPTZ, ADD COLUMN refunded_at TIMESTAMPTZ,
    ADD COLUMN settle_requested_at TIMESTAMPTZ;
-- The sweeper reads the ended orders still unsettled, oldest first.
CREATE INDEX orders_unsettled ON orders (updated_at) WHERE settled_at IS NULL AND status IN ('CANCELLED', 'EXPIRED');
-- Orders that ended before refunds existed and were never charged need no settlement; those
-- that were charged stay unsettled, and the sweeper has them refunded.
UPDATE orders o SET settled_at = now()
WHERE status IN ('CANCELLED', 'EXPIRED')
  AND NOT EXISTS (SELECT 1 FROM charges c WHERE c.order_id = o.id AND c.outcome = 'APPROVED');

ALTER TABLE sale_stats ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sale_stats DROP COLUMN refunded;
DROP INDEX orders_unsettled;
ALTER TABLE orders DROP COLUMN settle_requested_at, DROP COLUMN refunded_at, DROP COLUMN settled_at;
DROP TABLE refunds;
DELETE FROM charges WHERE outcome = 'VOIDED';
ALTER TABLE charges DROP CONSTRAINT charges_outcome_check;
ALTER TABLE charges ADD CONSTRAINT charges_outcome_check CHECK (outcome IN ('APPROVED', 'DECLINED'));

-- A refresh-token family (one sign-in and its rotations) gets a row of its own, on its user's
-- shard. Rotating a token locks the row, and revoking the family marks it under the same lock,
-- so a family revoked before or during a rotation never gains a live member.

-- +goose Up
CREATE TABLE refresh_families (
    family_id  UUID PRIMARY KEY,
    bucket     SMALLINT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_families_bucket ON refresh_families (bucket);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- A family is revoked when any of its tokens is: revocation always takes the whole family.
INSERT INTO refresh_families (family_id, bucket, user_id, revoked_at, created_at)
SELECT family_id, min(bucket), min(user_id), max(revoked_at), min(created_at)
FROM refresh_tokens GROUP BY family_id;

ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_family_fkey
    FOREIGN KEY (family_id) REFERENCES refresh_families (family_id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_fkey;
DROP INDEX refresh_tokens_user;
DROP TABLE refresh_families;

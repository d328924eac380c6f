-- twilio-delivery schema, version 1 (SQLite). `{prefix}` is the validated table prefix.
-- Times are microseconds since the Unix epoch (UTC), so they sort and compare as integers.

CREATE TABLE {prefix}messages (
    sid                   TEXT    NOT NULL PRIMARY KEY,
    account_sid           TEXT,
    to_addr               TEXT,
    from_addr             TEXT,
    messaging_service_sid TEXT,
    body                  TEXT,
    num_segments          INTEGER,
    status                TEXT    NOT NULL,
    -- MessageStatus::precedence(): the max-register compares ranks, not names.
    status_rank           INTEGER NOT NULL,
    error_code            INTEGER,
    error_message         TEXT,
    sent_recorded         INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;

-- What the reconciler polls: messages not final yet (rank < 7), oldest first.
CREATE INDEX {prefix}messages_pending_idx
    ON {prefix}messages (created_at, sid) WHERE status_rank < 7;
-- Listing: newest first, optionally by recipient or status.
CREATE INDEX {prefix}messages_created_idx ON {prefix}messages (created_at DESC, sid DESC);
CREATE INDEX {prefix}messages_to_idx ON {prefix}messages (to_addr, created_at DESC, sid DESC);
CREATE INDEX {prefix}messages_status_idx ON {prefix}messages (status, created_at DESC, sid DESC);

-- Every distinct (message, status) observation, kept once.
CREATE TABLE {prefix}events (
    id                INTEGER NOT NULL PRIMARY KEY,
    message_sid       TEXT    NOT NULL REFERENCES {prefix}messages (sid) ON DELETE CASCADE,
    status            TEXT    NOT NULL,
    error_code        INTEGER,
    received_at       INTEGER NOT NULL,
    source            TEXT    NOT NULL,
    idempotency_token TEXT,
    -- The raw form pairs in wire order: a JSON array of [key, value] arrays.
    raw               TEXT    NOT NULL DEFAULT '[]',
    UNIQUE (message_sid, status)
) STRICT;

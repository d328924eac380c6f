-- twilio-delivery schema, version 5 (SQLite): history keyed by message number.
--
-- A message's history was unique on (message_sid, status): SIDs are random, so each new
-- history row went into the index at a random page, and that page was written again (to the
-- WAL, then to the database at checkpoint) for every callback: most of what a batch wrote.
-- Messages now have a stable number (`id`, assigned in the order they were recorded), and the
-- history is unique on (message_id, status): callbacks, which arrive for recent messages,
-- write the index's last pages. `message_sid` stays in the history rows, unindexed, to read.
--
-- SQLite cannot add a primary key to a table: both tables are rebuilt, rows in their order.
CREATE TABLE {prefix}messages_v5 (
    id                    INTEGER NOT NULL PRIMARY KEY,
    sid                   TEXT    NOT NULL UNIQUE,
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

INSERT INTO {prefix}messages_v5 (sid, account_sid, to_addr, from_addr, messaging_service_sid,
    body, num_segments, status, status_rank, error_code, error_message, sent_recorded,
    created_at, updated_at)
SELECT sid, account_sid, to_addr, from_addr, messaging_service_sid, body, num_segments, status,
    status_rank, error_code, error_message, sent_recorded, created_at, updated_at
FROM {prefix}messages ORDER BY rowid;

CREATE TABLE {prefix}events_v5 (
    id                INTEGER NOT NULL PRIMARY KEY,
    message_id        INTEGER NOT NULL REFERENCES {prefix}messages_v5 (id) ON DELETE CASCADE,
    message_sid       TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    error_code        INTEGER,
    received_at       INTEGER NOT NULL,
    source            TEXT    NOT NULL,
    idempotency_token TEXT,
    -- The raw form pairs in wire order: a JSON array of [key, value] arrays.
    raw               TEXT    NOT NULL DEFAULT '[]',
    UNIQUE (message_id, status)
) STRICT;

INSERT INTO {prefix}events_v5 (id, message_id, message_sid, status, error_code, received_at,
    source, idempotency_token, raw)
SELECT e.id, m.id, e.message_sid, e.status, e.error_code, e.received_at, e.source,
    e.idempotency_token, e.raw
FROM {prefix}events AS e JOIN {prefix}messages_v5 AS m ON m.sid = e.message_sid
ORDER BY e.id;

DROP TABLE {prefix}events;
DROP TABLE {prefix}messages;
-- Renaming also renames the reference of events_v5 to messages_v5.
ALTER TABLE {prefix}messages_v5 RENAME TO {prefix}messages;
ALTER TABLE {prefix}events_v5 RENAME TO {prefix}events;

CREATE INDEX {prefix}messages_pending_idx
    ON {prefix}messages (created_at, sid) WHERE status_rank < 7;
CREATE INDEX {prefix}messages_created_idx ON {prefix}messages (created_at DESC, sid DESC);
CREATE INDEX {prefix}messages_to_idx ON {prefix}messages (to_addr, created_at DESC, sid DESC);

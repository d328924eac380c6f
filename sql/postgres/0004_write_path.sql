-- twilio-delivery schema, version 4 (PostgreSQL): callbacks update messages in place.
--
-- A status change now changes no indexed column of messages, so PostgreSQL updates the row
-- on its own page without touching any index (a HOT update): the status index is dropped
-- (listing by status walks the newest-first index and filters) and the messages that are not
-- final yet (status_rank < 7) are listed in their own small table instead of a partial index
-- whose membership every final status changed. The write path keeps both in step: a message
-- is in pending exactly while its status_rank is below 7.
DROP INDEX {prefix}messages_status_idx;

CREATE TABLE {prefix}pending (
    sid        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO {prefix}pending (sid, created_at)
    SELECT sid, created_at FROM {prefix}messages WHERE status_rank < 7;
-- What the reconciler polls: messages not final yet, oldest first.
CREATE INDEX {prefix}pending_created_idx ON {prefix}pending (created_at, sid);
DROP INDEX {prefix}messages_pending_idx;

-- Room on each page for the updated row versions.
ALTER TABLE {prefix}messages SET (fillfactor = 80);

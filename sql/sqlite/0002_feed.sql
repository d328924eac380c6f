-- twilio-delivery schema, version 2 (SQLite): the change feed and its consumers.

-- Every real change of a message's current status, written in the transaction that made it.
-- The store has one writer, so positions are handed out in commit order; AUTOINCREMENT never
-- reuses a position.
CREATE TABLE {prefix}feed (
    position   INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    sid        TEXT    NOT NULL,
    previous   TEXT,
    current    TEXT    NOT NULL,
    error_code INTEGER,
    source     TEXT    NOT NULL,
    at         INTEGER NOT NULL
) STRICT;

-- Where each named consumer is: every position up to this one was handled (or parked).
CREATE TABLE {prefix}feed_cursors (
    consumer   TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Changes a consumer's handler kept failing on; replayable.
CREATE TABLE {prefix}dead_letters (
    consumer  TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    parked_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, position)
) STRICT;

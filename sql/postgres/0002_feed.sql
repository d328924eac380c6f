-- twilio-delivery schema, version 2 (PostgreSQL): the change feed, its consumers, and leases.

-- The feed's one-row counter. A writing transaction that produces changes updates it last,
-- just before committing, and takes its positions from it: the row lock makes transactions
-- take positions in commit order, so a reader that sees position n has seen every position
-- below n (a sequence or identity column would commit out of order and let readers skip).
CREATE TABLE {prefix}feed_head (
    id       BOOLEAN NOT NULL PRIMARY KEY DEFAULT TRUE CHECK (id),
    position BIGINT  NOT NULL
);
INSERT INTO {prefix}feed_head (id, position) VALUES (TRUE, 0);

-- Every real change of a message's current status, written in the transaction that made it.
CREATE TABLE {prefix}feed (
    position   BIGINT      NOT NULL PRIMARY KEY,
    sid        TEXT COLLATE "C" NOT NULL,
    previous   TEXT COLLATE "C",
    current    TEXT COLLATE "C" NOT NULL,
    error_code BIGINT,
    source     TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);

-- Where each named consumer is: every position up to this one was handled (or parked).
CREATE TABLE {prefix}feed_cursors (
    consumer   TEXT        NOT NULL PRIMARY KEY,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Changes a consumer's handler kept failing on; replayable.
CREATE TABLE {prefix}dead_letters (
    consumer  TEXT        NOT NULL,
    position  BIGINT      NOT NULL,
    error     TEXT        NOT NULL,
    attempts  INTEGER     NOT NULL,
    parked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, position)
);

-- Named leases (the reconciler's): held by `holder` until `expires_at`. A lease is a row,
-- not a session lock, so it works through PgBouncer in transaction mode.
CREATE TABLE {prefix}leases (
    name       TEXT        NOT NULL PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

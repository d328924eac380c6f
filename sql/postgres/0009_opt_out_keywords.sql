-- twilio-delivery schema, version 9 (PostgreSQL): the incoming messages whose STOP or START
-- the opt-out list applied, so that a redelivery of one cannot undo a later keyword of its
-- sender. One row per keyword message; no number, no text.
CREATE TABLE {prefix}opt_out_keywords (
    sid        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL
);

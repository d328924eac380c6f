-- twilio-delivery schema, version 6 (SQLite): the incoming messages whose STOP or START the
-- opt-out list applied, so that a redelivery of one cannot undo a later keyword of its sender.
-- One row per keyword message; no number, no text.
CREATE TABLE {prefix}opt_out_keywords (
    sid        TEXT    NOT NULL PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

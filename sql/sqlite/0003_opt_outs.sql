-- twilio-delivery schema, version 3 (SQLite): recipients who opted out.
CREATE TABLE {prefix}opt_outs (
    number TEXT    NOT NULL PRIMARY KEY,
    source TEXT    NOT NULL,
    since  INTEGER NOT NULL
) STRICT;

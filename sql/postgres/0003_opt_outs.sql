-- twilio-delivery schema, version 3 (PostgreSQL): recipients who opted out.
CREATE TABLE {prefix}opt_outs (
    number TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    source TEXT NOT NULL,
    since  TIMESTAMPTZ NOT NULL
);

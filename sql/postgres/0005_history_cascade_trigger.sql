-- twilio-delivery schema, version 5 (PostgreSQL): the history's foreign key becomes a trigger.
--
-- The foreign key from events to messages cost a query per history row: PostgreSQL checked
-- each new row by looking its message up and share-locking it, about a fifth of a callback's
-- time in the database. The write path never writes a history row without its message (one
-- statement writes both, the message locked or created first), so the check bought nothing
-- there. What it gave users was the cascade, deleting a message deleted its history: a
-- statement-level trigger keeps that, at no cost to callbacks.
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = '{prefix}events'::regclass AND contype = 'f' LOOP
        EXECUTE format('ALTER TABLE {prefix}events DROP CONSTRAINT %I', c);
    END LOOP;
END $$;

CREATE FUNCTION {prefix}delete_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {prefix}events WHERE message_sid IN (SELECT sid FROM gone);
    RETURN NULL;
END $$;

CREATE TRIGGER {prefix}delete_history AFTER DELETE ON {prefix}messages
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION {prefix}delete_history();

-- twilio-delivery schema, version 8 (PostgreSQL): deleting a message takes it off the pending
-- list too.
--
-- Version 5's trigger deleted a deleted message's history but left its row in `pending` when
-- the message was not final. Such a row is never polled (the pending query joins the
-- messages), but it stayed forever. The trigger now removes both, and the rows left behind by
-- earlier deletes go.
CREATE OR REPLACE FUNCTION {prefix}delete_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {prefix}events WHERE message_sid IN (SELECT sid FROM gone);
    DELETE FROM {prefix}pending WHERE sid IN (SELECT sid FROM gone);
    RETURN NULL;
END $$;

DELETE FROM {prefix}pending AS p
    WHERE NOT EXISTS (SELECT 1 FROM {prefix}messages AS m WHERE m.sid = p.sid);

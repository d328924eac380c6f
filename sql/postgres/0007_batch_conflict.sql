-- twilio-delivery schema, version 7 (PostgreSQL): a batch whose plan went stale fails whole.
--
-- A batch of callbacks reads its messages' rows without locking them, plans its writes in
-- the application, then writes in one statement that commits on its own: two round trips, and
-- no transaction left open between them. That statement locks the rows it read (in SID
-- order) and checks that each is still the version it read, and that every message it meant
-- to create was created by it. When not (another instance wrote one in between), it calls
-- this function, which fails the statement with a serialization failure: nothing of the
-- batch is written, and the store reads and plans again.
CREATE FUNCTION {prefix}batch_conflict() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a message of the batch changed between its read and its write'
        USING ERRCODE = 'serialization_failure';
END $$;

-- twilio-delivery schema, version 6 (PostgreSQL): feed positions from a sequence.
--
-- The one-row counter of version 2 handed out positions in commit order, but its row lock made
-- every writing transaction wait for the one before it to commit: two batches could not
-- commit at once, on one instance or several. Positions now come from a sequence, taken by a
-- transaction after it has locked its messages' rows (so the changes of one message still get
-- increasing positions) and while it holds a shared advisory lock that readers look for: a
-- reader that meets a missing position waits for the transactions holding that lock before
-- it moves past it (see the store's `changes_after`). A position whose transaction rolled
-- back stays missing.
CREATE SEQUENCE {prefix}feed_position AS BIGINT MINVALUE 1;
SELECT setval('{prefix}feed_position', position + 1, false) FROM {prefix}feed_head;
DROP TABLE {prefix}feed_head;

-- twilio-delivery schema, version 4 (SQLite): a lighter write path.
--
-- Every status change rewrote two entries of the status index, at random places (SIDs are
-- random): two of the five pages a callback dirtied. Listing by status now walks the
-- newest-first index and filters, which costs a listing what it saved every callback.
DROP INDEX {prefix}messages_status_idx;

-- Failed ownership checks name the order number (or serial) tried, so guesses at one order
-- from many chats are counted together; checks kept before this have no lookup ('').
ALTER TABLE ownership_checks_failed ADD COLUMN lookup TEXT NOT NULL DEFAULT '';
CREATE INDEX ownership_checks_failed_lookup ON ownership_checks_failed (lookup, at);
CREATE INDEX ownership_checks_failed_at ON ownership_checks_failed (at);

-- As SQLite's 0009: workers claim inbox and outbox rows until `lease_until`; the inbox
-- names the chat when the channel knows it, to keep each chat's order.
ALTER TABLE inbox ADD COLUMN chat_id text;
ALTER TABLE inbox ADD COLUMN claimed_by text;
ALTER TABLE inbox ADD COLUMN lease_until text COLLATE "C";
ALTER TABLE outbox ADD COLUMN claimed_by text;
ALTER TABLE outbox ADD COLUMN lease_until text COLLATE "C";
CREATE INDEX inbox_chat ON inbox (channel, chat_id);
CREATE INDEX outbox_chat ON outbox (channel, chat_id, id) WHERE failed_reason IS NULL;
-- A named role one process holds at a time (the timers' leader) until `expires_at`.
CREATE TABLE leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at text COLLATE "C" NOT NULL
);

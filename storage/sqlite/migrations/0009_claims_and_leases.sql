-- Several workers on one database (PostgreSQL; here the same schema, one process): a worker
-- claims inbox and outbox rows until `lease_until`, so another leaves them alone while it
-- lives; the inbox names the chat when the channel knows it, to keep each chat's order.
ALTER TABLE inbox ADD COLUMN chat_id TEXT;
ALTER TABLE inbox ADD COLUMN claimed_by TEXT;
ALTER TABLE inbox ADD COLUMN lease_until TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
CREATE INDEX inbox_chat ON inbox (channel, chat_id);
CREATE INDEX outbox_chat ON outbox (channel, chat_id, id) WHERE failed_reason IS NULL;
-- A named role one process holds at a time (the timers' leader) until `expires_at`.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE inbox (
    channel TEXT NOT NULL,
    update_id TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel, update_id)
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    body TEXT NOT NULL,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    failed_reason TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE failed_reason IS NULL;
CREATE TABLE faq_misses (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    question TEXT NOT NULL,
    reason TEXT NOT NULL,
    entry_id TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX processed_updates_age ON processed_updates (processed_at);

CREATE TABLE orders (
    number TEXT PRIMARY KEY COLLATE NOCASE,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE order_serials (
    serial TEXT NOT NULL COLLATE NOCASE,
    number TEXT NOT NULL COLLATE NOCASE REFERENCES orders (number) ON DELETE CASCADE,
    PRIMARY KEY (serial, number)
);
CREATE INDEX order_serials_number ON order_serials (number);
CREATE TABLE order_history (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL COLLATE NOCASE,
    status TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX order_history_number ON order_history (number, id);
CREATE TABLE order_links (
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    number TEXT NOT NULL COLLATE NOCASE,
    linked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel, chat_id, number)
);
CREATE INDEX order_links_number ON order_links (number);
CREATE TABLE order_notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    number TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX order_notices_pending ON order_notices (channel, id);
CREATE TABLE ownership_checks_failed (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX ownership_checks_failed_chat ON ownership_checks_failed (channel, chat_id, at);

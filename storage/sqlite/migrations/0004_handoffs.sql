CREATE TABLE handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    order_number TEXT,
    opened_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_by_name TEXT,
    first_staff_reply_at TEXT,
    last_customer_at TEXT,
    last_staff_at TEXT,
    waiting_since TEXT,
    reminded_at TEXT,
    closed_at TEXT,
    closed_by TEXT,
    rating INTEGER
);
-- At most one open handoff per customer; HandoffOpened relies on it.
CREATE UNIQUE INDEX handoffs_one_open ON handoffs (channel, chat_id)
    WHERE status != 'closed';
CREATE INDEX handoffs_open ON handoffs (opened_at, id) WHERE status != 'closed';
CREATE INDEX handoffs_opened_at ON handoffs (opened_at);
CREATE INDEX handoffs_chat ON handoffs (channel, chat_id);
CREATE TABLE staff_topics (
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    staff_chat_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id, staff_chat_id)
);
CREATE INDEX staff_topics_thread ON staff_topics (channel, staff_chat_id, thread_id);
CREATE TABLE staff_relays (
    channel TEXT NOT NULL,
    staff_chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel, staff_chat_id, message_id)
);
CREATE INDEX staff_relays_age ON staff_relays (created_at);
CREATE TABLE staff_notes (
    id INTEGER PRIMARY KEY,
    handoff_id INTEGER NOT NULL REFERENCES handoffs (id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX staff_notes_handoff ON staff_notes (handoff_id, at);
CREATE TABLE chat_lines (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    at TEXT NOT NULL,
    from_customer INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX chat_lines_chat ON chat_lines (channel, chat_id, id);
CREATE INDEX chat_lines_age ON chat_lines (at);

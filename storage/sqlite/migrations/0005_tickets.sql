CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    submitted_at TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    decided_by TEXT,
    staff_note TEXT
);
CREATE INDEX tickets_chat ON tickets (channel, chat_id, created_at);
CREATE INDEX tickets_created_at ON tickets (created_at);
CREATE TABLE ticket_answers (
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ticket_id, name)
);
CREATE TABLE ticket_media (
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    file_ref TEXT NOT NULL DEFAULT '',
    size INTEGER,
    mime TEXT,
    file_name TEXT,
    link TEXT,
    stored_path TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, name, position)
);
-- Files still to copy to disk; `media_to_store` repeats this WHERE to use it.
CREATE INDEX ticket_media_to_store ON ticket_media (created_at)
    WHERE file_ref != '' AND link IS NULL AND stored_path IS NULL;
CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

-- When each customer last wrote, on the messenger's clock where it says (WhatsApp's
-- `timestamp`): WhatsApp's 24-hour customer-service window runs from it.
ALTER TABLE conversations ADD COLUMN last_inbound_at TEXT;
-- Each message sent by its messenger id (WhatsApp's wamid): the reply it was part of (its
-- outbox id and body, kept after the outbox forgets it; NULL while only a status that came
-- before the send's answer is known) and the latest status reported, with the error when it
-- failed. Pruned with the failed replies.
CREATE TABLE sent_messages (
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    outbox_id INTEGER,
    part INTEGER NOT NULL DEFAULT 0,
    body TEXT,
    sent_at TEXT NOT NULL,
    status TEXT NOT NULL,
    status_at TEXT,
    error_code INTEGER,
    error TEXT,
    PRIMARY KEY (channel, message_id)
);
CREATE INDEX sent_messages_chat ON sent_messages (channel, chat_id, sent_at);
CREATE INDEX sent_messages_age ON sent_messages (sent_at);

-- As SQLite's 0011: when each customer last wrote (WhatsApp's 24-hour window runs from it),
-- and each message sent by its messenger id with the reply it was part of and the latest
-- status reported.
ALTER TABLE conversations ADD COLUMN last_inbound_at text COLLATE "C";
CREATE TABLE sent_messages (
    channel text NOT NULL,
    chat_id text NOT NULL,
    message_id text NOT NULL,
    outbox_id bigint,
    part integer NOT NULL DEFAULT 0,
    body text,
    sent_at text COLLATE "C" NOT NULL,
    status text NOT NULL,
    status_at text COLLATE "C",
    error_code integer,
    error text,
    PRIMARY KEY (channel, message_id)
);
CREATE INDEX sent_messages_chat ON sent_messages (channel, chat_id, sent_at);
CREATE INDEX sent_messages_age ON sent_messages (sent_at);

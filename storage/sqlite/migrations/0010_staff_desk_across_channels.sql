-- The staff desk is a chat of its own channel (the Telegram staff group), whatever channel
-- the customer writes on. A customer's topic names both: `channel`/`chat_id` stay the
-- customer's, `staff_channel` is the staff chat's (the customer's, in rows of before; the
-- bot always writes it, so the default only fills rows written without it).
CREATE TABLE staff_topics_across (
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    staff_chat_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    staff_channel TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (channel, chat_id, staff_channel, staff_chat_id)
);
INSERT INTO staff_topics_across (channel, chat_id, staff_chat_id, thread_id, staff_channel)
    SELECT channel, chat_id, staff_chat_id, thread_id, channel FROM staff_topics ORDER BY rowid;
DROP TABLE staff_topics;
ALTER TABLE staff_topics_across RENAME TO staff_topics;
CREATE INDEX staff_topics_thread ON staff_topics (staff_channel, staff_chat_id, thread_id);
-- A relayed message's `channel` stays the staff chat's; `customer_channel` is the customer's
-- (the staff chat's, in rows of before).
ALTER TABLE staff_relays ADD COLUMN customer_channel TEXT NOT NULL DEFAULT '';
UPDATE staff_relays SET customer_channel = channel;
-- The phone number a channel verified (WhatsApp's wa_id), for the rep who needs it (/phone).
ALTER TABLE handoffs ADD COLUMN phone TEXT;

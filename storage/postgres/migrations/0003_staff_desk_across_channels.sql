-- As SQLite's 0010: the staff desk is a chat of its own channel (the Telegram staff group),
-- whatever channel the customer writes on. A customer's topic names both: `channel`/`chat_id`
-- stay the customer's, `staff_channel` is the staff chat's (the customer's, in rows of
-- before; the bot always writes it, so the default only fills rows written without it).
ALTER TABLE staff_topics ADD COLUMN staff_channel text NOT NULL DEFAULT '';
UPDATE staff_topics SET staff_channel = channel;
ALTER TABLE staff_topics DROP CONSTRAINT staff_topics_pkey;
ALTER TABLE staff_topics ADD PRIMARY KEY (channel, chat_id, staff_channel, staff_chat_id);
DROP INDEX staff_topics_thread;
CREATE INDEX staff_topics_thread ON staff_topics (staff_channel, staff_chat_id, thread_id);
-- A relayed message's `channel` stays the staff chat's; `customer_channel` is the customer's
-- (the staff chat's, in rows of before).
ALTER TABLE staff_relays ADD COLUMN customer_channel text NOT NULL DEFAULT '';
UPDATE staff_relays SET customer_channel = channel;
-- The phone number a channel verified (WhatsApp's wa_id), for the rep who needs it (/phone).
ALTER TABLE handoffs ADD COLUMN phone text;

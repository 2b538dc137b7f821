-- The customer picked the language with /language: Telegram's language code no
-- longer overrides it.
ALTER TABLE conversations ADD COLUMN language_chosen INTEGER NOT NULL DEFAULT 0;

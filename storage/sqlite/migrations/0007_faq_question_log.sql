-- Every question the FAQ matcher sees, personal data masked; the turn chooses the id.
CREATE TABLE faq_questions (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    language TEXT NOT NULL,
    question TEXT NOT NULL,
    decision TEXT NOT NULL,
    entry_id TEXT,
    confidence REAL NOT NULL,
    asked_at TEXT NOT NULL
);
CREATE INDEX faq_questions_asked_at ON faq_questions (asked_at);
-- Misses and votes name the logged question; older rows have none. A miss keeps a copy
-- of the question's text, as older ones hold theirs, so every miss reads on its own.
ALTER TABLE faq_misses ADD COLUMN question_id TEXT REFERENCES faq_questions (id);
ALTER TABLE faq_feedback ADD COLUMN question_id TEXT REFERENCES faq_questions (id);
CREATE INDEX faq_misses_created_at ON faq_misses (created_at);
CREATE INDEX faq_feedback_created_at ON faq_feedback (created_at);
CREATE TABLE staff_digests (
    day TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);

-- The updater's abuse accounting: a per-host window of client faults, and shared rate-limit counters
-- (failed update logins per client address and per account), kept here so that several updater
-- processes enforce the limits together.

ALTER TABLE hosts ADD COLUMN fault_window_at INTEGER;
ALTER TABLE hosts ADD COLUMN fault_window_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rate_limits (
    name            TEXT PRIMARY KEY,
    window_start    INTEGER NOT NULL,
    hits            INTEGER NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- The updater's abuse accounting: a per-host window of client faults, and shared rate-limit counters
-- (failed update logins per client address and per account), kept here so that several updater
-- processes enforce the limits together.

ALTER TABLE hosts
    ADD COLUMN fault_window_at BIGINT NULL,
    ADD COLUMN fault_window_count INT NOT NULL DEFAULT 0;

CREATE TABLE rate_limits (
    name            VARCHAR(191) NOT NULL PRIMARY KEY,
    window_start    BIGINT NOT NULL,
    hits            INT NOT NULL,
    KEY rate_limits_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Mail sent to host owners by 'ddserver notify': stale warnings, removals of stale hosts and abuse flags.
-- One row per host, kind and cycle, so the same event is never mailed twice, even by two runs at once:
--   stale    cycle = the host's last sign of life (created, updated or confirmed) that the warning is about;
--            token_hash/expires_at: the confirmation link of the mail (stored hashed), confirmed_at: when the
--            owner confirmed (a later sign of life, so the next warning is about a new cycle)
--   removal  cycle = the stale cycle the host was removed for (the host row is gone by then: host_name)
--   abuse    cycle = 1, 2, ... one per time the host was flagged; resolved_at: when the flag was found cleared
-- state: queued (to be sent), sending (claimed by a run: never sent again, even if that run crashed), sent.
-- Rows of hosts that no longer exist are dropped once sent; an account's rows go with it.

CREATE TABLE host_notices (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id         INT NOT NULL,
    user_id         INT NOT NULL,
    host_name       VARCHAR(253) NOT NULL,
    kind            VARCHAR(16) NOT NULL,
    cycle           BIGINT NOT NULL,
    state           VARCHAR(16) NOT NULL,
    created_at      BIGINT NOT NULL,
    claimed_at      BIGINT NULL,
    sent_at         BIGINT NULL,
    token_hash      CHAR(64) NULL,
    expires_at      BIGINT NULL,
    confirmed_at    BIGINT NULL,
    resolved_at     BIGINT NULL,
    UNIQUE KEY host_notices_event (host_id, kind, cycle),
    UNIQUE KEY host_notices_token (token_hash),
    KEY host_notices_state (state),
    KEY host_notices_user (user_id),
    CONSTRAINT host_notices_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
    id              INTEGER PRIMARY KEY,
    host_id         INTEGER NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    host_name       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    cycle           INTEGER NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    claimed_at      INTEGER,
    sent_at         INTEGER,
    token_hash      TEXT UNIQUE,
    expires_at      INTEGER,
    confirmed_at    INTEGER,
    resolved_at     INTEGER,
    UNIQUE (host_id, kind, cycle)
);
CREATE INDEX host_notices_state ON host_notices (state);
CREATE INDEX host_notices_user ON host_notices (user_id);

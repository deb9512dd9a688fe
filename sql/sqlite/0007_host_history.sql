-- Each host's recent updates (answer, client address, TLS, addresses set, and the fault they counted as)
-- and the failed logins against its name (client address, TLS, reason), shown on its owner's page and
-- kept to the last [updater] history_kept and auth_trail_kept per host by 'ddserver prune'. No secret
-- tried is ever stored.

CREATE TABLE host_updates (
    id          INTEGER PRIMARY KEY,
    host_id     INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    client      TEXT,
    tls         INTEGER NOT NULL DEFAULT 0,
    result      TEXT NOT NULL,
    ipv4        TEXT,
    ipv6        TEXT,
    fault       TEXT
);
CREATE INDEX host_updates_host ON host_updates (host_id, id);

CREATE TABLE host_auth_failures (
    id          INTEGER PRIMARY KEY,
    host_id     INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    client      TEXT,
    tls         INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL
);
CREATE INDEX host_auth_failures_host ON host_auth_failures (host_id, id);

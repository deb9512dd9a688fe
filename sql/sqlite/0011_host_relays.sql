-- Relays: a host's address changes forwarded to third-party dyndns2 services. Each row is also the
-- transactional outbox of its relay: the transaction that changes the host's addresses bumps 'generation',
-- and a relay worker sends the host's current addresses while 'sent_generation' is behind it (only the
-- latest state is ever sent). A worker claims a row with a lease (holder, lease_until) before it sends, so
-- of several workers one sends it; 'due_at' is when it may be tried (NULL: nothing to send, so that the
-- workers' look for due relays reads only those), later after failures (backoff); an answer such as badauth
-- sets 'stopped' until the relay is edited. The secret is sealed (ddserver.sealing), never stored in clear.

CREATE TABLE host_relays (
    id               INTEGER PRIMARY KEY,
    host_id          INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    remote_name      TEXT NOT NULL,
    username         TEXT NOT NULL,
    secret           TEXT NOT NULL,
    family           TEXT NOT NULL DEFAULT 'both',
    created_at       INTEGER NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 1,
    sent_generation  INTEGER NOT NULL DEFAULT 0,
    stopped          INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           REAL DEFAULT 0,
    holder           TEXT NOT NULL DEFAULT '',
    lease_until      REAL NOT NULL DEFAULT 0,
    last_at          INTEGER,
    last_result      TEXT,
    last_detail      TEXT,
    last_sent        TEXT
);
CREATE INDEX host_relays_host ON host_relays (host_id, id);
CREATE INDEX host_relays_due ON host_relays (due_at);

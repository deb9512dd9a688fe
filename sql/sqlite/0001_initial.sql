-- ddserver initial schema (SQLite). Times are Unix epoch seconds; names are lower-case IDNA A-labels
-- without the trailing dot.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    is_active       INTEGER NOT NULL DEFAULT 0,
    is_approved     INTEGER NOT NULL DEFAULT 0,
    is_disabled     INTEGER NOT NULL DEFAULT 0,
    max_hosts       INTEGER,
    totp_secret     TEXT,
    language        TEXT,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_login_at   INTEGER
);

CREATE TABLE zones (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    nameservers         TEXT NOT NULL,
    hostmaster          TEXT NOT NULL,
    serial              INTEGER NOT NULL,
    refresh             INTEGER NOT NULL DEFAULT 3600,
    retry               INTEGER NOT NULL DEFAULT 600,
    expire              INTEGER NOT NULL DEFAULT 604800,
    minimum             INTEGER NOT NULL DEFAULT 60,
    zone_ttl            INTEGER NOT NULL DEFAULT 3600,
    ttl                 INTEGER,
    is_public           INTEGER NOT NULL DEFAULT 1,
    description         TEXT NOT NULL DEFAULT '',
    rfc2136_server      TEXT,
    rfc2136_transport   TEXT NOT NULL DEFAULT 'tcp',
    tsig_name           TEXT,
    tsig_algorithm      TEXT,
    tsig_secret         TEXT,
    rfc2136_position    INTEGER NOT NULL DEFAULT 0,
    rfc2136_error       TEXT,
    rfc2136_error_at    INTEGER,
    rfc2136_ok_at       INTEGER,
    created_at          INTEGER NOT NULL
);

CREATE TABLE zone_users (
    zone_id     INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (zone_id, user_id)
);

CREATE TABLE hosts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    zone_id             INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    user_id             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ipv4                TEXT,
    ipv6                TEXT,
    ttl                 INTEGER,
    wildcard            INTEGER NOT NULL DEFAULT 0,
    secret_hash         TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    address_changed_at  INTEGER,
    last_update_at      INTEGER,
    last_client         TEXT,
    last_tls            INTEGER,
    last_result         TEXT,
    client_faults       INTEGER NOT NULL DEFAULT 0,
    server_faults       INTEGER NOT NULL DEFAULT 0,
    abuse               INTEGER NOT NULL DEFAULT 0,
    blocked             INTEGER NOT NULL DEFAULT 0,
    blocked_reason      TEXT
);
CREATE INDEX hosts_user ON hosts (user_id);
CREATE INDEX hosts_zone ON hosts (zone_id);

CREATE TABLE records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    zone_id     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    content     TEXT NOT NULL,
    ttl         INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX records_host ON records (host_id);
CREATE INDEX records_name ON records (name);

CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id     INTEGER NOT NULL,
    zone        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX changes_created ON changes (created_at);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    data            TEXT NOT NULL DEFAULT '{}',
    remember        INTEGER NOT NULL DEFAULT 0,
    client          TEXT,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    payload     TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    used_at     INTEGER
);
CREATE INDEX tokens_user ON tokens (user_id, kind);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  REAL NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    actor_id    INTEGER,
    client      TEXT,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_kind ON events (kind, subject, created_at);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE settings (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);

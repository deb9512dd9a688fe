-- ddserver initial schema (MySQL 8 / MariaDB 10.6+). Times are Unix epoch seconds; names are lower-case
-- IDNA A-labels without the trailing dot. Binary collation: names are compared exactly as stored.

CREATE TABLE users (
    id              INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username        VARCHAR(64) NOT NULL,
    email           VARCHAR(254) NOT NULL,
    password_hash   VARCHAR(255) NULL,
    is_admin        TINYINT(1) NOT NULL DEFAULT 0,
    is_active       TINYINT(1) NOT NULL DEFAULT 0,
    is_approved     TINYINT(1) NOT NULL DEFAULT 0,
    is_disabled     TINYINT(1) NOT NULL DEFAULT 0,
    max_hosts       INT NULL,
    totp_secret     VARCHAR(64) NULL,
    language        VARCHAR(16) NULL,
    failed_logins   INT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_login_at   BIGINT NULL,
    UNIQUE KEY users_username (username),
    UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE zones (
    id                  INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                VARCHAR(253) NOT NULL,
    nameservers         VARCHAR(2000) NOT NULL,
    hostmaster          VARCHAR(253) NOT NULL,
    serial              BIGINT NOT NULL,
    refresh             INT NOT NULL DEFAULT 3600,
    retry               INT NOT NULL DEFAULT 600,
    expire              INT NOT NULL DEFAULT 604800,
    minimum             INT NOT NULL DEFAULT 60,
    zone_ttl            INT NOT NULL DEFAULT 3600,
    ttl                 INT NULL,
    is_public           TINYINT(1) NOT NULL DEFAULT 1,
    description         VARCHAR(255) NOT NULL DEFAULT '',
    rfc2136_server      VARCHAR(300) NULL,
    rfc2136_transport   VARCHAR(8) NOT NULL DEFAULT 'tcp',
    tsig_name           VARCHAR(253) NULL,
    tsig_algorithm      VARCHAR(32) NULL,
    tsig_secret         VARCHAR(512) NULL,
    rfc2136_position    BIGINT NOT NULL DEFAULT 0,
    rfc2136_error       TEXT NULL,
    rfc2136_error_at    BIGINT NULL,
    rfc2136_ok_at       BIGINT NULL,
    created_at          BIGINT NOT NULL,
    UNIQUE KEY zones_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE zone_users (
    zone_id     INT NOT NULL,
    user_id     INT NOT NULL,
    PRIMARY KEY (zone_id, user_id),
    CONSTRAINT zone_users_zone FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE,
    CONSTRAINT zone_users_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE hosts (
    id                  INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                VARCHAR(253) NOT NULL,
    zone_id             INT NOT NULL,
    user_id             INT NOT NULL,
    ipv4                VARCHAR(15) NULL,
    ipv6                VARCHAR(39) NULL,
    ttl                 INT NULL,
    wildcard            TINYINT(1) NOT NULL DEFAULT 0,
    secret_hash         VARCHAR(255) NOT NULL,
    description         VARCHAR(255) NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    address_changed_at  BIGINT NULL,
    last_update_at      BIGINT NULL,
    last_client         VARCHAR(45) NULL,
    last_tls            TINYINT(1) NULL,
    last_result         VARCHAR(32) NULL,
    client_faults       INT NOT NULL DEFAULT 0,
    server_faults       INT NOT NULL DEFAULT 0,
    abuse               TINYINT(1) NOT NULL DEFAULT 0,
    blocked             TINYINT(1) NOT NULL DEFAULT 0,
    blocked_reason      VARCHAR(255) NULL,
    UNIQUE KEY hosts_name (name),
    KEY hosts_user (user_id),
    KEY hosts_zone (zone_id),
    CONSTRAINT hosts_zone_fk FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE,
    CONSTRAINT hosts_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE records (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id     INT NOT NULL,
    zone_id     INT NOT NULL,
    name        VARCHAR(253) NOT NULL,
    type        VARCHAR(10) NOT NULL,
    content     VARCHAR(2048) NOT NULL,
    ttl         INT NULL,
    created_at  BIGINT NOT NULL,
    KEY records_host (host_id),
    KEY records_name (name),
    CONSTRAINT records_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE changes (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    zone_id     INT NOT NULL,
    zone        VARCHAR(253) NOT NULL,
    name        VARCHAR(253) NOT NULL,
    created_at  DOUBLE NOT NULL,
    KEY changes_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id              CHAR(64) NOT NULL PRIMARY KEY,
    user_id         INT NOT NULL,
    data            TEXT NOT NULL,
    remember        TINYINT(1) NOT NULL DEFAULT 0,
    client          VARCHAR(45) NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    KEY sessions_user (user_id),
    KEY sessions_expires (expires_at),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tokens (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash  CHAR(64) NOT NULL,
    kind        VARCHAR(16) NOT NULL,
    user_id     INT NULL,
    payload     TEXT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NULL,
    used_at     BIGINT NULL,
    UNIQUE KEY tokens_hash (token_hash),
    KEY tokens_user (user_id, kind),
    CONSTRAINT tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE events (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    created_at  DOUBLE NOT NULL,
    kind        VARCHAR(32) NOT NULL,
    subject     VARCHAR(255) NOT NULL DEFAULT '',
    actor_id    INT NULL,
    client      VARCHAR(45) NULL,
    detail      TEXT NOT NULL,
    KEY events_kind (kind, subject, created_at),
    KEY events_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE settings (
    name    VARCHAR(64) NOT NULL PRIMARY KEY,
    value   TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

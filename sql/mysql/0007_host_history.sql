-- Each host's recent updates (answer, client address, TLS, addresses set, and the fault they counted as)
-- and the failed logins against its name (client address, TLS, reason), shown on its owner's page and
-- kept to the last [updater] history_kept and auth_trail_kept per host by 'ddserver prune'. No secret
-- tried is ever stored.

CREATE TABLE host_updates (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id     INT NOT NULL,
    created_at  BIGINT NOT NULL,
    client      VARCHAR(45) NULL,
    tls         TINYINT(1) NOT NULL DEFAULT 0,
    result      VARCHAR(16) NOT NULL,
    ipv4        VARCHAR(15) NULL,
    ipv6        VARCHAR(39) NULL,
    fault       VARCHAR(32) NULL,
    KEY host_updates_host (host_id, id),
    CONSTRAINT host_updates_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE host_auth_failures (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id     INT NOT NULL,
    created_at  BIGINT NOT NULL,
    client      VARCHAR(45) NULL,
    tls         TINYINT(1) NOT NULL DEFAULT 0,
    reason      VARCHAR(32) NOT NULL,
    KEY host_auth_failures_host (host_id, id),
    CONSTRAINT host_auth_failures_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

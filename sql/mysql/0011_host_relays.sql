-- Relays: a host's address changes forwarded to third-party dyndns2 services. Each row is also the
-- transactional outbox of its relay: the transaction that changes the host's addresses bumps 'generation',
-- and a relay worker sends the host's current addresses while 'sent_generation' is behind it (only the
-- latest state is ever sent). A worker claims a row with a lease (holder, lease_until) before it sends, so
-- of several workers one sends it; 'due_at' is when it may be tried (NULL: nothing to send, so that the
-- workers' look for due relays reads only those), later after failures (backoff); an answer such as badauth
-- sets 'stopped' until the relay is edited. The secret is sealed (ddserver.sealing), never stored in clear.

CREATE TABLE host_relays (
    id               INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id          INT NOT NULL,
    url              VARCHAR(500) NOT NULL,
    remote_name      VARCHAR(253) NOT NULL,
    username         VARCHAR(200) NOT NULL,
    secret           VARCHAR(1000) NOT NULL,
    family           VARCHAR(8) NOT NULL DEFAULT 'both',
    created_at       BIGINT NOT NULL,
    generation       BIGINT NOT NULL DEFAULT 1,
    sent_generation  BIGINT NOT NULL DEFAULT 0,
    stopped          TINYINT(1) NOT NULL DEFAULT 0,
    attempts         INT NOT NULL DEFAULT 0,
    due_at           DOUBLE NULL DEFAULT 0,
    holder           VARCHAR(200) NOT NULL DEFAULT '',
    lease_until      DOUBLE NOT NULL DEFAULT 0,
    last_at          BIGINT NULL,
    last_result      VARCHAR(32) NULL,
    last_detail      VARCHAR(255) NULL,
    last_sent        VARCHAR(100) NULL,
    KEY host_relays_host (host_id, id),
    KEY host_relays_due (due_at),
    CONSTRAINT host_relays_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

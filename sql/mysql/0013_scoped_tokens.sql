-- Update and API tokens with a name, scopes, the hosts they cover and the time of their last use.
-- scopes: space-separated, of 'update' (addresses), 'txt' (TXT records, ACME DNS-01) and 'api' (the JSON API).
-- A token covers every host of its user, or the user's hosts in one zone (zone_id), or the hosts listed in
-- token_hosts (host_scoped = 1: none when they are all gone). The account update token made before becomes
-- a token for every host with every scope, without expiry.

ALTER TABLE tokens
    ADD COLUMN name VARCHAR(64) NULL,
    ADD COLUMN scopes VARCHAR(64) NULL,
    ADD COLUMN zone_id INT NULL,
    ADD COLUMN host_scoped TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN last_used_at BIGINT NULL,
    ADD CONSTRAINT tokens_zone_fk FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE;

CREATE TABLE token_hosts (
    token_id    INT NOT NULL,
    host_id     INT NOT NULL,
    PRIMARY KEY (token_id, host_id),
    KEY token_hosts_host (host_id),
    CONSTRAINT token_hosts_token_fk FOREIGN KEY (token_id) REFERENCES tokens (id) ON DELETE CASCADE,
    CONSTRAINT token_hosts_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

UPDATE tokens SET name = 'account token', scopes = 'update txt api' WHERE kind = 'update';

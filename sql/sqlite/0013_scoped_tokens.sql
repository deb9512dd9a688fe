-- Update and API tokens with a name, scopes, the hosts they cover and the time of their last use.
-- scopes: space-separated, of 'update' (addresses), 'txt' (TXT records, ACME DNS-01) and 'api' (the JSON API).
-- A token covers every host of its user, or the user's hosts in one zone (zone_id), or the hosts listed in
-- token_hosts (host_scoped = 1: none when they are all gone). The account update token made before becomes
-- a token for every host with every scope, without expiry.

ALTER TABLE tokens ADD COLUMN name TEXT;
ALTER TABLE tokens ADD COLUMN scopes TEXT;
ALTER TABLE tokens ADD COLUMN zone_id INTEGER REFERENCES zones (id) ON DELETE CASCADE;
ALTER TABLE tokens ADD COLUMN host_scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;

CREATE TABLE token_hosts (
    token_id    INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    host_id     INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, host_id)
);
CREATE INDEX token_hosts_host ON token_hosts (host_id);

UPDATE tokens SET name = 'account token', scopes = 'update txt api' WHERE kind = 'update';

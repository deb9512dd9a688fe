-- Per zone, the TTL range the owners of its hosts may choose and whether they may make a host a wildcard
-- (one that answers for every name below it). Existing zones allow wildcards, as the hosts imported from
-- ddserver 0.2 may have them.

ALTER TABLE zones
    ADD COLUMN min_ttl INT NOT NULL DEFAULT 60,
    ADD COLUMN max_ttl INT NOT NULL DEFAULT 86400,
    ADD COLUMN allow_wildcards TINYINT(1) NOT NULL DEFAULT 1;

-- DNSSEC: whether a zone is signed and its NSEC3 parameters (NSEC3PARAM text as PowerDNS reads it; narrow
-- mode, so no ordering of names is stored), and the zone's signing keys. Every PowerDNS node signs with
-- the same keys, read by its recursor. A private key is kept in PowerDNS's "Private-key-format: v1.2"
-- text, sealed with the data key ([auth] data_key), never in the clear.

ALTER TABLE zones ADD COLUMN dnssec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE zones ADD COLUMN nsec3param TEXT NOT NULL DEFAULT '1 0 0 -';

CREATE TABLE zone_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id     INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    flags       INTEGER NOT NULL,
    algorithm   INTEGER NOT NULL,
    tag         INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    published   INTEGER NOT NULL DEFAULT 1,
    public_key  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX zone_keys_zone ON zone_keys (zone_id, id);

-- DNSSEC: whether a zone is signed and its NSEC3 parameters (NSEC3PARAM text as PowerDNS reads it; narrow
-- mode, so no ordering of names is stored), and the zone's signing keys. Every PowerDNS node signs with
-- the same keys, read by its recursor. A private key is kept in PowerDNS's "Private-key-format: v1.2"
-- text, sealed with the data key ([auth] data_key), never in the clear.

ALTER TABLE zones
    ADD COLUMN dnssec TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN nsec3param VARCHAR(300) NOT NULL DEFAULT '1 0 0 -';

CREATE TABLE zone_keys (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    zone_id     INT NOT NULL,
    flags       INT NOT NULL,
    algorithm   INT NOT NULL,
    tag         INT NOT NULL,
    active      TINYINT(1) NOT NULL DEFAULT 1,
    published   TINYINT(1) NOT NULL DEFAULT 1,
    public_key  VARCHAR(1000) NOT NULL,
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    KEY zone_keys_zone (zone_id, id),
    CONSTRAINT zone_keys_zone_fk FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Secondaries of a zone: the addresses PowerDNS notifies besides the zone's nameservers (also-notify, each an
-- address or address:port, separated by spaces), and the TSIG keys allowed to transfer the zone. A key's
-- secret is sealed with [auth] data_key; its name is unique, as PowerDNS asks for a key by name alone.

ALTER TABLE zones ADD COLUMN also_notify VARCHAR(2000) NOT NULL DEFAULT '';

CREATE TABLE zone_transfer_keys (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    zone_id     INT NOT NULL,
    name        VARCHAR(253) NOT NULL,
    algorithm   VARCHAR(32) NOT NULL,
    secret      VARCHAR(512) NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE KEY zone_transfer_keys_name (name),
    KEY zone_transfer_keys_zone (zone_id),
    CONSTRAINT zone_transfer_keys_zone FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

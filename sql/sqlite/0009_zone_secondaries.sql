-- Secondaries of a zone: the addresses PowerDNS notifies besides the zone's nameservers (also-notify, each an
-- address or address:port, separated by spaces), and the TSIG keys allowed to transfer the zone. A key's
-- secret is sealed with [auth] data_key; its name is unique, as PowerDNS asks for a key by name alone.

ALTER TABLE zones ADD COLUMN also_notify TEXT NOT NULL DEFAULT '';

CREATE TABLE zone_transfer_keys (
    id          INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    name        TEXT NOT NULL UNIQUE,
    algorithm   TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX zone_transfer_keys_zone ON zone_transfer_keys (zone_id);

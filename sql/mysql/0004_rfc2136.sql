-- The RFC 2136 worker: one lease per zone, so that of several workers only one pushes a zone at a time
-- (changes reach the nameserver once and in order), and a flag asking for a full comparison (AXFR) of
-- the zone, set when its server or key is edited or by 'ddserver zone sync' while a worker runs.

CREATE TABLE rfc2136_leases (
    zone_id     INT NOT NULL PRIMARY KEY,
    holder      VARCHAR(200) NOT NULL DEFAULT '',
    expires_at  DOUBLE NOT NULL DEFAULT 0,
    full_sync   TINYINT(1) NOT NULL DEFAULT 0,
    CONSTRAINT rfc2136_leases_zone FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

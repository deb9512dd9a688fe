-- The RFC 2136 worker: one lease per zone, so that of several workers only one pushes a zone at a time
-- (changes reach the nameserver once and in order), and a flag asking for a full comparison (AXFR) of
-- the zone, set when its server or key is edited or by 'ddserver zone sync' while a worker runs.

CREATE TABLE rfc2136_leases (
    zone_id     INTEGER PRIMARY KEY REFERENCES zones (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL DEFAULT '',
    expires_at  REAL NOT NULL DEFAULT 0,
    full_sync   INTEGER NOT NULL DEFAULT 0
);

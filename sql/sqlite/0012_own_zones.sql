-- Users' own zones: a zone may belong to a user (owner_id; NULL for the zones admins run). Such a zone is
-- served only while it is approved (when [zones] approval is on) and its parent delegates it to the service's
-- nameservers: 'served' is what DNS reads (the recursor, the RFC 2136 worker), kept by the delegation checks
-- (first and last good check, the first failing one since, and the reason of the last failure).

ALTER TABLE zones ADD COLUMN owner_id INTEGER REFERENCES users (id);
ALTER TABLE zones ADD COLUMN served INTEGER NOT NULL DEFAULT 1;
ALTER TABLE zones ADD COLUMN approved INTEGER NOT NULL DEFAULT 1;
ALTER TABLE zones ADD COLUMN delegation_checked_at INTEGER;
ALTER TABLE zones ADD COLUMN delegation_ok_at INTEGER;
ALTER TABLE zones ADD COLUMN delegation_failing_since INTEGER;
ALTER TABLE zones ADD COLUMN delegation_error TEXT;
CREATE INDEX zones_owner ON zones (owner_id);

-- Users' own zones: a zone may belong to a user (owner_id; NULL for the zones admins run). Such a zone is
-- served only while it is approved (when [zones] approval is on) and its parent delegates it to the service's
-- nameservers: 'served' is what DNS reads (the recursor, the RFC 2136 worker), kept by the delegation checks
-- (first and last good check, the first failing one since, and the reason of the last failure).

ALTER TABLE zones
    ADD COLUMN owner_id INT NULL,
    ADD COLUMN served TINYINT(1) NOT NULL DEFAULT 1,
    ADD COLUMN approved TINYINT(1) NOT NULL DEFAULT 1,
    ADD COLUMN delegation_checked_at BIGINT NULL,
    ADD COLUMN delegation_ok_at BIGINT NULL,
    ADD COLUMN delegation_failing_since BIGINT NULL,
    ADD COLUMN delegation_error VARCHAR(1000) NULL;

ALTER TABLE zones ADD CONSTRAINT zones_owner FOREIGN KEY (owner_id) REFERENCES users (id);

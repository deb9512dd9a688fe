-- Related names: a host row with a parent is a name that follows its main host (the parent): its IPv6
-- address is the main host's prefix plus its interface identifier (ifid, in IPv6 notation), taken to
-- prefix_len bits, and with follow_ipv4 it has the main host's IPv4 address too. The updater, the web
-- interface and the command line write them in the transactions that write the main host, so DNS (the
-- recursor, the RFC 2136 worker) serves them as any other host row.
-- ipv6_prefix is the last IPv6 prefix an update of a main host carried (such as 2001:db8:1234:5600::/56),
-- the base of its related names until its IPv6 address changes without one. related_count is the number of
-- related names a main host has, kept with them under its row lock: the updater reads it with the row it
-- locks, and reads related names only for a host that has some.

ALTER TABLE hosts
    ADD COLUMN parent_id INT NULL,
    ADD COLUMN ifid VARCHAR(39) NULL,
    ADD COLUMN prefix_len INT NULL,
    ADD COLUMN follow_ipv4 TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN ipv6_prefix VARCHAR(43) NULL,
    ADD COLUMN related_count INT NOT NULL DEFAULT 0,
    ADD KEY hosts_parent (parent_id),
    ADD CONSTRAINT hosts_parent_fk FOREIGN KEY (parent_id) REFERENCES hosts (id) ON DELETE CASCADE;

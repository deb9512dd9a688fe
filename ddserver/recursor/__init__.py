"""ddserver-recursor: the PowerDNS backend process (pipe, remote pipe, remote unix socket)."""

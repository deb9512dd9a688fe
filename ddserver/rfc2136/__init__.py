"""ddserver-rfc2136: keeps external nameservers in step with RFC 2136 updates signed with TSIG."""

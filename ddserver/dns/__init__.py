"""DNS cores without I/O: zone index, pipe and remote backend protocols, cache purge, RFC 2136 planning."""

"""ddserver: a self-hosted dynamic DNS service (dyndns2 updater, web interface, PowerDNS backend, RFC 2136)."""

__version__ = "0.3.0.dev0"

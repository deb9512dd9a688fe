"""All SQL of ddserver: named functions for users, zones, hosts, records, changes, tokens and events.

Modules are used qualified (``from ddserver.store import hosts``). Public functions take a ``Database``
and run their own transaction; functions whose first argument is a ``Transaction`` compose into a
caller's transaction.
"""

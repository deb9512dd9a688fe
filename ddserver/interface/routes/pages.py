"""The start page (the visitor's addresses, as nsupdate.info shows them) and the address endpoint."""

from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import socket
import threading

import bottle

from ddserver.interface.web import AuthLevel, Context
from ddserver.store import hosts

_resolver_lock = threading.Lock()
_resolver: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    # Made on first use, not at import: importing the interface starts no threads.
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ddserver-rdns")
        return _resolver


def reverse_name(address: str, timeout: float = 1.0) -> str:
    """The PTR name of an address, or "" (none, or the resolver took longer than ``timeout``)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return ""
    future = _pool().submit(socket.gethostbyaddr, address)
    try:
        return str(future.result(timeout=timeout)[0])
    except (OSError, concurrent.futures.TimeoutError):
        return ""


def address_info(ctx: Context) -> dict[str, str]:
    address = ctx.client
    try:
        family = "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"
    except ValueError:
        family = ""
    name = reverse_name(address) if ctx.config.interface.reverse_dns else ""
    return {"address": address, "family": family, "reverse": name}


def start(ctx: Context) -> str:
    count = hosts.count_for_user(ctx.db, ctx.user.id) if ctx.user else 0
    return ctx.render("index.html", seen=address_info(ctx), host_count=count)


def myip(ctx: Context) -> str:
    """JSON of the visitor's address; the start page asks the IPv4-only and IPv6-only names for it."""
    ctx.response.content_type = "application/json"
    origin = ctx.request.headers.get("Origin", "")
    base = ctx.config.http.base_url.rstrip("/")
    if origin and origin == base:
        ctx.response.set_header("Access-Control-Allow-Origin", origin)
        ctx.response.set_header("Vary", "Origin")
    return json.dumps(address_info(ctx))


def register(app: bottle.Bottle) -> None:
    app.route("/", "GET", start, auth=AuthLevel.ANYONE)
    app.route("/api/myip", "GET", myip)

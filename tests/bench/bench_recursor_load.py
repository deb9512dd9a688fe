"""Start-up load time and resident memory of the remote-socket recursor with many hosts.

.venv/bin/python -m tests.bench.bench_recursor_load --hosts 1000000 --dialect sqlite
.venv/bin/python -m tests.bench.bench_recursor_load --hosts 1000000 --dialect mysql

Prints the load average just before the recursor starts (the figures are wall-clock times). It then starts the
recursor twice more from the snapshot the first one wrote: with the database up (caught up with the feed),
and, with --dialect sqlite, with the database gone (served stale).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from tests import support
from tests.bench import recursor_data


def status(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) // 1024 for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}


def start(config: Path, folder: Path, env: dict[str, str], hosts: int, what: str) -> None:
    """Start the recursor, wait for its socket, print the figures, stop it (writing its snapshot)."""
    sock = folder / "r.sock"
    log = folder / f"recursor-{what.split(',')[0]}-{time.monotonic()}.log"
    print(f"load average before the start: {os.getloadavg()[0]:.2f}")
    started = time.monotonic()
    recursor = support.Process(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-socket", str(sock)],
        log=log,
        env=env,
    )
    try:
        recursor.wait_for(sock.exists, 600, "the socket")
        ready = time.monotonic() - started
        time.sleep(1)
        mem = status(recursor.pid)
        text = recursor.log()
        loaded = re.search(r"in ([\d.]+) s", text)
        inside = re.search(r"\(([\d.]+) s after start\)", text)
        print(
            f"remote-socket, {hosts} hosts, from the {what}: socket ready {ready:.1f} s after exec, "
            f"{inside.group(1) if inside else '?'} s after the daemon's start "
            f"(index load {loaded.group(1) if loaded else '-'} s); RSS {mem['VmRSS']} MB, peak {mem['VmHWM']} MB"
        )
        written = time.monotonic()
        recursor.stop(timeout=120)
        print(f"  stopped in {time.monotonic() - written:.1f} s; {text.count('STALE')} stale warning(s)")
        for line in recursor.log().splitlines():
            if "snapshot" in line:
                print("  " + line.split(": ", 1)[-1][:160])
    finally:
        recursor.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000000)
    parser.add_argument("--dialect", default="sqlite", choices=("sqlite", "mysql"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        (folder / "db").mkdir()
        url = support.new_database_url(args.dialect, folder / "db")
        db = support.create_database(url)
        try:
            started = time.monotonic()
            recursor_data.seed_ddserver(db, args.hosts, batch=50000)
            print(f"seeded {args.hosts} hosts ({args.dialect}) in {time.monotonic() - started:.0f} s")
            config = support.write_config_file(folder / "ddserver.conf", url, "[recursor]\npurge = none\n")
            env = dict(os.environ, DDSERVER_RECURSOR_SNAPSHOT_DIR=str(folder / "snapshots"))
            start(config, folder, env, args.hosts, "database")
            start(config, folder, env, args.hosts, "snapshot, database up")
            if args.dialect == "sqlite":
                (folder / "db").rename(folder / "gone")
                start(config, folder, env, args.hosts, "snapshot, database gone")
        finally:
            if args.dialect == "mysql":
                db.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())

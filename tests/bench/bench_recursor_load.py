"""Start-up load time and resident memory of the remote-socket recursor with many hosts.

.venv/bin/python -m tests.bench.bench_recursor_load --hosts 1000000 --dialect sqlite
.venv/bin/python -m tests.bench.bench_recursor_load --hosts 1000000 --dialect mysql

Prints the load average just before the recursor starts (the figures are wall-clock times).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000000)
    parser.add_argument("--dialect", default="sqlite", choices=("sqlite", "mysql"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        url = support.new_database_url(args.dialect, folder)
        db = support.create_database(url)
        try:
            started = time.monotonic()
            recursor_data.seed_ddserver(db, args.hosts, batch=50000)
            print(f"seeded {args.hosts} hosts ({args.dialect}) in {time.monotonic() - started:.0f} s")
            config = support.write_config_file(folder / "ddserver.conf", url, "[recursor]\npurge = none\n")
            sock = folder / "r.sock"
            print(f"load average before the start: {os.getloadavg()[0]:.2f}")
            started = time.monotonic()
            recursor = support.Process(
                [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-socket", str(sock)],
                log=folder / "recursor.log",
            )
            try:
                recursor.wait_for(sock.exists, 600, "the socket")
                ready = time.monotonic() - started
                time.sleep(1)
                mem = status(recursor.pid)
                loaded = re.search(r"in ([\d.]+) s", recursor.log())
                print(
                    f"remote-socket, {args.hosts} hosts: socket ready {ready:.1f} s after exec "
                    f"(index load {loaded.group(1) if loaded else '?'} s); RSS {mem['VmRSS']} MB, peak {mem['VmHWM']} MB"
                )
            finally:
                recursor.stop()
        finally:
            if args.dialect == "mysql":
                db.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())

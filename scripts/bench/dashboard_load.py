#!/usr/bin/env python3
"""Loads a running backend's dashboard for a while: logged-in clients fetch the overview and
device list pages back to back. Run it beside `apiary-sim run` to see what dashboard use
does to check-in latency (docs/benchmarks.md, "Backend capacity").

    scripts/bench/dashboard_load.py BASE_URL PASSWORD SECONDS [CLIENTS]

Only the given (loopback) URL is used.
"""

import statistics
import sys
import threading
import time

from dashboard import login

PAGES = ["/", "/devices", "/devices?page=20", "/devices?q=sim-0"]


def load(base, password, seconds, clients):
    """Fetches pages from `clients` logged-in clients for `seconds`; returns a summary line."""
    times, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        opener = login(base, password)
        i = 0
        while time.monotonic() < deadline:
            t = time.perf_counter()
            opener.open(base + PAGES[i % len(PAGES)]).read()
            with lock:
                times.append((time.perf_counter() - t) * 1000)
            i += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (f"dashboard: {len(times)} pages in {seconds:.0f} s by {clients} clients,"
            f" median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms")


def main():
    base, password, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    print(load(base, password, seconds, clients))


if __name__ == "__main__":
    main()

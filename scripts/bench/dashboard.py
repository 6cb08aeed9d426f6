#!/usr/bin/env python3
"""Dashboard pages with a large fleet: by default 10,000 approved devices in 100 groups and
200,000 reports, written straight into the SQLite file of a real backend, then each page
fetched 20 times by a logged-in client. Prints the median and worst time per page.

    scripts/bench/dashboard.py [--devices N] [--reports N] [path/to/apiary-backend]
    (default binary: target/server/apiary-backend)

Only loopback is used. Times are wall-clock on a shared machine: compare pages with each
other within one run, not across machines.
"""

import argparse
import http.cookiejar
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

GROUPS = 100
ROUNDS = 20


def start_backend(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
         "--device-listen", "127.0.0.1:0", "--public-url", "https://127.0.0.1:1"],
        stdout=subprocess.PIPE, text=True, env={"RUST_LOG": "warn"})
    password = base = device_url = None
    for line in proc.stdout:
        if line.startswith("dashboard login: admin / "):
            password = line.split()[4]
        if line.startswith("operator API listening on "):
            base = line.split()[-1]
        if line.startswith("device API listening on "):
            device_url = line.split()[4]
            break
    return proc, base, password, device_url


def fill(db_path, devices, reports):
    now = int(time.time())
    db = sqlite3.connect(db_path, timeout=30)
    facts = json.dumps({"hostname": "h", "os": "Linux", "kernel": "6.1", "arch": "armv7l",
                        "agent_version": "0.1.0"})
    db.execute("INSERT OR IGNORE INTO groups (path) VALUES ('/site')")
    for g in range(GROUPS):
        db.execute("INSERT OR IGNORE INTO groups (path) VALUES (?)", (f"/site/g{g:03}",))
    db.executemany(
        "INSERT INTO devices (id, name, public_key, status, group_path, facts, remote_ip,"
        " requested_at, approved_at, last_checkin) VALUES (?,?,?,?,?,?,?,?,?,?)",
        ((f"{i:064x}", f"device-{i:05}", "00", "approved", f"/site/g{i % GROUPS:03}", facts,
          "192.0.2.1", now, now, now - (i % 3600)) for i in range(devices)))
    levels = ["info", "info", "info", "warning", "error", "critical"]
    db.executemany(
        "INSERT INTO reports (device_id, queue_id, seq, time, received_at, level, policy, item,"
        " message) VALUES (?,?,?,?,?,?,?,?,?)",
        ((f"{i % devices:064x}", "q", i, now - i, now - (i * 13) % (40 * 86400),
          levels[i % len(levels)], "file_distribution", "/etc/app.conf", f"message {i}")
         for i in range(reports)))
    db.commit()
    db.close()


def login(base, password):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrf": token, "username": "admin",
                                   "password": password}).encode()
    opener.open(base + "/login", data)
    return opener


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--devices", type=int, default=10_000)
    args.add_argument("--reports", type=int, default=200_000)
    args.add_argument("binary", nargs="?", default="target/server/apiary-backend")
    args = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, password, _ = start_backend(args.binary, tmp + "/data")
        try:
            started = time.perf_counter()
            fill(tmp + "/data/apiary.db", args.devices, args.reports)
            print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            opener = login(base, password)
            pages = [
                ("overview", "/"),
                ("devices, all (page 1)", "/devices"),
                ("devices, page 150", "/devices?page=150"),
                ("devices, one group", "/devices?group=/site/g042"),
                ("devices, search", "/devices?q=device-0999"),
                ("device page with its log", f"/devices/{42:064x}"),
                ("device log, searched", f"/devices/{42:064x}?q=message+4"),
                ("commits", "/commits"),
            ]
            print(f"{args.devices} devices, {GROUPS} groups, {args.reports} reports;"
                  f" {ROUNDS} fetches each")
            print("| page | median | worst | bytes |")
            print("|---|---|---|---|")
            for label, path in pages:
                times, size = [], 0
                for _ in range(ROUNDS):
                    t = time.perf_counter()
                    body = opener.open(base + path).read()
                    times.append((time.perf_counter() - t) * 1000)
                    size = len(body)
                print(f"| {label} | {statistics.median(times):.1f} ms | {max(times):.1f} ms"
                      f" | {size:,} |")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()

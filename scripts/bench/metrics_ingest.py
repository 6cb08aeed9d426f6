#!/usr/bin/env python3
"""Metrics ingest: starts a real backend in a temporary data dir, enrols a fleet with
`apiary-sim`, and measures the backend's CPU per check-in at a fixed rate, without metrics,
with one sample per check-in (an agent sampling once a cycle) and with five (a 5-minute
interval sampled every minute), each sample of 16 series. Then reads from SQLite's dbstat
what a raw sample and an hourly row take on disk, and scales both to a device-day.

    cargo build --profile server -p apiary-backend -p apiary-cli -p apiary-sim
    scripts/bench/metrics_ingest.py [--devices 10000] [--seconds 60] [--rate R]

`--rate` defaults to the fleet's real load at a 5-minute interval (devices / 300 per
second). The simulator runs beside the backend on the same cores. Only loopback is used.
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from capacity import parse, sim  # noqa: E402
from dashboard import start_backend  # noqa: E402

INTERVAL = 300  # seconds between a device's check-ins
SERIES = 16  # series in each simulated sample


def table_bytes(db_path, names):
    """Bytes on disk of the tables and indexes `names`, and the rows of the first."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        sizes = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
        rows = db.execute(f"SELECT COUNT(*) FROM {names[0]}").fetchone()[0]
    finally:
        db.close()
    return sum(sizes.get(n, 0) for n in names), rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--rate", type=float, help="check-ins/s (default: devices / 300)")
    p.add_argument("--bin", default="target/server")
    args = p.parse_args()
    rate = args.rate or args.devices / INTERVAL
    with tempfile.TemporaryDirectory() as tmp:
        data = tmp + "/data"
        proc, _base, _password, device_url = start_backend(
            os.path.join(args.bin, "apiary-backend"), data)
        try:
            env = dict(os.environ, APIARY_SERVER=_base,
                       APIARY_TOKEN=open(data + "/admin.token").read().strip())
            key = subprocess.run([os.path.join(args.bin, "apiary"), "bootstrap-keys", "create",
                                  "--group", "/sim", "--auto-accept"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            with open(tmp + "/key", "w") as f:
                f.write(key)
            common = ["--server", device_url, "--ca", data + "/ca.crt",
                      "--devices", tmp + "/devices.jsonl"]
            sim(args, common, ["enrol", "--count", str(args.devices), "--key-file",
                               tmp + "/key", "--threads", "4"])
            run = ["run", "--seconds", str(args.seconds), "--threads", "16", "--rate",
                   f"{rate:g}", "--backend-pid", str(proc.pid)]
            print(f"{args.devices:,} devices, {rate:,.1f} check-ins/s, {args.seconds} s each, "
                  "simulator beside the backend\n")
            print("| check-ins carry | check-ins | errors | p50 | p99 | backend CPU per check-in |"
                  " backend cores at a 5-minute interval |")
            print("|---|---|---|---|---|---|---|")
            for label, samples in (("no metrics", 0), ("1 sample", 1), ("5 samples", 5)):
                r = parse(sim(args, common, run + ["--metrics", str(samples)]))
                cores = (int(r["cpu"]) / 1e6 * args.devices / INTERVAL) if r["cpu"] != "-" else 0
                print(f"| {label} | {r['count']:,} | {r['errors']} | {r['p50']} ms |"
                      f" {r['p99']} ms | {r['cpu']} µs | {cores:.3f} |")
            raw, raw_rows = table_bytes(data + "/apiary.db",
                                        ["metric_samples", "metric_samples_by_time"])
            hourly, hourly_rows = table_bytes(data + "/apiary.db",
                                              ["metric_hourly", "metric_hourly_by_hour"])
        finally:
            proc.terminate()
            proc.wait()
    per_raw = raw / max(raw_rows, 1)
    per_hour = hourly / max(hourly_rows, 1)
    print(f"\nStorage ({SERIES} series a sample; tables with their indexes, from dbstat):\n")
    print(f"- raw: {raw_rows:,} samples in {raw:,} B = {per_raw:.0f} B per sample")
    print(f"- hourly: {hourly_rows:,} rows in {hourly:,} B = {per_hour:.0f} B per device-hour")
    for label, per_day in (("a sample per 5-minute cycle", 288), ("a sample a minute", 1440)):
        day = per_day * per_raw + 24 * per_hour
        kept = 7 * per_day * per_raw + 397 * 24 * per_hour
        print(f"- {label}: {day / 1e3:,.1f} kB per device-day; at the default retention "
              f"(7 days raw, 397 days hourly) {kept / 1e6:.2f} MB per device")


if __name__ == "__main__":
    main()

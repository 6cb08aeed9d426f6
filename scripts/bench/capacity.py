#!/usr/bin/env python3
"""Backend capacity with the device simulator: starts a real backend in a temporary data dir,
enrols a fleet with `apiary-sim`, and measures idle check-ins (resumed and full handshake,
as fast as the simulator goes), check-in latency at a fixed rate with and without the
dashboard being loaded, and a reconnect storm of the whole fleet. Prints Markdown tables.

    cargo build --profile server -p apiary-backend -p apiary-cli -p apiary-sim
    scripts/bench/capacity.py [--devices 20000] [--seconds 20] [--bin target/server]

The simulator runs on the same machine, so it takes a share of the same cores: the
throughput printed is what backend and simulator reach together. Only loopback is used.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from dashboard import start_backend  # noqa: E402
import dashboard_load  # noqa: E402


def sim(args, common, extra):
    out = subprocess.run([os.path.join(args.bin, "apiary-sim")] + common + extra,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"apiary-sim {' '.join(extra)}: {out.stderr}")
    return out.stdout


def parse(text):
    """The simulator's summary as numbers."""
    get = lambda pattern: re.search(pattern, text)
    count, secs, rate = get(r"check-ins:\s+(\d+) in ([\d.]+) s = (\d+)/s").groups()
    p50, p99, worst = get(r"p50 ([\d.]+)\s+p99 ([\d.]+)\s+max ([\d.]+)").groups()
    cpu = get(r"= (\d+) µs per check-in")
    retried = get(r"retried:\s+(\d+)")
    return {"count": int(count), "secs": float(secs), "rate": int(rate), "p50": p50,
            "p99": p99, "max": worst, "errors": int(get(r"errors:\s+(\d+)").group(1)),
            "cpu": cpu.group(1) if cpu else "-", "retried": int(retried.group(1)) if retried else 0}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=20_000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--rate", type=int, default=2000, help="check-ins/s of the latency runs")
    p.add_argument("--bin", default="target/server")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = tmp + "/data"
        proc, base, password, device_url = start_backend(
            os.path.join(args.bin, "apiary-backend"), data)
        try:
            env = dict(os.environ, APIARY_SERVER=base,
                       APIARY_TOKEN=open(data + "/admin.token").read().strip())
            key = subprocess.run([os.path.join(args.bin, "apiary"), "bootstrap-keys", "create",
                                  "--group", "/sim", "--auto-accept"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            with open(tmp + "/key", "w") as f:
                f.write(key)
            common = ["--server", device_url, "--ca", data + "/ca.crt",
                      "--devices", tmp + "/devices.jsonl"]
            sim(args, common, ["enrol", "--count", str(args.devices), "--key-file", tmp + "/key",
                               "--threads", "4"])
            run = ["run", "--seconds", str(args.seconds), "--backend-pid", str(proc.pid)]
            rows = [
                ("resumed, as fast as 6 workers go", run + ["--threads", "6"]),
                ("full handshake, as fast as 6 workers go",
                 run + ["--threads", "6", "--full-handshake"]),
                (f"resumed, at {args.rate:,}/s", run + ["--threads", "16", "--rate",
                                                         str(args.rate)]),
            ]
            print(f"{args.devices:,} devices, idle check-ins, simulator beside the backend\n")
            print("| run | check-ins/s | p50 | p99 | max | errors | backend CPU per check-in |")
            print("|---|---|---|---|---|---|---|")
            for label, extra in rows:
                r = parse(sim(args, common, extra))
                print(f"| {label} | {r['rate']:,} | {r['p50']} ms | {r['p99']} ms |"
                      f" {r['max']} ms | {r['errors']} | {r['cpu']} µs |")
            # The same fixed rate while two dashboard clients fetch pages back to back.
            loaded = []
            load = threading.Thread(target=lambda: loaded.append(
                dashboard_load.load(base, password, args.seconds + 15, 2)))
            load.start()
            r = parse(sim(args, common, rows[2][1]))
            load.join()
            print(f"| resumed, at {args.rate:,}/s, dashboard loaded | {r['rate']:,} |"
                  f" {r['p50']} ms | {r['p99']} ms | {r['max']} ms | {r['errors']} |"
                  f" {r['cpu']} µs |")
            print(f"\n{loaded[0]}\n")
            print("| reconnect storm | in flight | served in | check-ins/s | retried attempts |"
                  " errors | p99 | backend CPU per check-in |")
            print("|---|---|---|---|---|---|---|---|")
            for flight in (256, 1024):
                r = parse(sim(args, common, run + ["--storm", "--threads", str(flight)]))
                print(f"| {r['count']:,} devices | {flight} | {r['secs']:.1f} s | {r['rate']:,} |"
                      f" {r['retried']:,} | {r['errors']} | {r['p99']} ms | {r['cpu']} µs |")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Sums the bytes a traced process tree wrote under given directories.

    write_audit.py STRACE_LOG DIR [DIR ...]

STRACE_LOG comes from `strace -f -e trace=openat,open,creat,write,pwrite64,writev,close,rename,renameat,renameat2 -o LOG`.
Prints one JSON object: {DIR: {"bytes": n, "files": [paths written]}}.
A file counts when it was opened for writing under DIR; every byte written to its descriptor
is summed, so temporary files renamed into place count too.
"""
import json
import os
import re
import sys

OPEN = re.compile(r'^(\d+)\s+(?:openat\([^,]+,\s*|open\(|creat\()"([^"]+)",\s*([A-Z_|]+)[^=]*=\s*(\d+)')
WRITE = re.compile(r'^(\d+)\s+(?:write|pwrite64|writev)\((\d+),.*=\s*(\d+)\s*$')
CLOSE = re.compile(r'^(\d+)\s+close\((\d+)\)')


def main():
    log, dirs = sys.argv[1], [os.path.realpath(d) for d in sys.argv[2:]]
    result = {d: {"bytes": 0, "files": set()} for d in dirs}
    open_fds = {}  # (pid, fd) -> dir
    cwd = os.getcwd()
    with open(log, errors="replace") as f:
        for line in f:
            m = OPEN.match(line)
            if m:
                pid, path, flags, fd = m.groups()
                if ("O_WRONLY" in flags or "O_RDWR" in flags or "O_CREAT" in flags):
                    full = os.path.realpath(os.path.join(cwd, path))
                    for d in dirs:
                        if full.startswith(d + os.sep):
                            open_fds[(pid, fd)] = d
                            result[d]["files"].add(os.path.relpath(full, d))
                continue
            m = WRITE.match(line)
            if m:
                pid, fd, n = m.groups()
                d = open_fds.get((pid, fd))
                if d:
                    result[d]["bytes"] += int(n)
                continue
            m = CLOSE.match(line)
            if m:
                open_fds.pop((m.group(1), m.group(2)), None)
    print(json.dumps({d: {"bytes": r["bytes"], "files": sorted(r["files"])} for d, r in result.items()}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Sums the bytes a traced process tree wrote under given directories.

    write_audit.py STRACE_LOG DIR [DIR ...]

STRACE_LOG comes from `strace -f -y -e trace=openat,open,creat,write,pwrite64,writev,close,rename,renameat,renameat2 -o LOG`.
Prints one JSON object: {DIR: {"bytes": n, "files": [paths written]}}.
A file counts when it was opened for writing under DIR; every byte written to its descriptor
is summed, so temporary files renamed into place count too. `-y` makes strace print the
path of each descriptor, which is what places a file opened relative to a directory
descriptor (`openat(dirfd, name)`, as the agent's safe_fs does for every file).
"""
import json
import os
import re
import sys

# The opened file's own path comes from `-y`'s annotation of the returned descriptor.
OPEN = re.compile(r'^(\d+)\s+(openat|open|creat)\((.*)\)\s*=\s*(\d+)<([^>]+)>')
WRITE = re.compile(r'^(\d+)\s+(?:write|pwrite64|writev)\((\d+)(?:<[^>]*>)?,.*=\s*(\d+)\s*$')
CLOSE = re.compile(r'^(\d+)\s+close\((\d+)(?:<[^>]*>)?\)')


def main():
    log, dirs = sys.argv[1], [os.path.realpath(d) for d in sys.argv[2:]]
    result = {d: {"bytes": 0, "files": set()} for d in dirs}
    open_fds = {}  # (pid, fd) -> dir
    cwd = os.getcwd()
    with open(log, errors="replace") as f:
        for line in f:
            m = OPEN.match(line)
            if m:
                pid, call, args, fd, path = m.groups()
                if call == "creat" or any(f in args for f in ("O_WRONLY", "O_RDWR", "O_CREAT")):
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

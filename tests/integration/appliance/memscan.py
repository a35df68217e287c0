#!/usr/bin/env python3
"""tests/integration/appliance/memscan.py PID WORD...: how many times each
WORD occurs in the readable memory of process PID (heap, stacks, anonymous
mappings; not the files it maps read-only), one line per word:
"WORD COUNT". Exits 2 when the memory cannot be read (not root, or the
kernel forbids it), so a test can say it skipped. It only reads."""
import sys


def main():
    pid = int(sys.argv[1])
    words = [w.encode() for w in sys.argv[2:]]
    counts = dict.fromkeys(words, 0)
    read_any = False
    with open("/proc/%d/maps" % pid) as maps:
        regions = [line.split() for line in maps]
    try:
        mem = open("/proc/%d/mem" % pid, "rb", 0)
    except OSError:
        sys.exit(2)
    with mem:
        for parts in regions:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            name = parts[5] if len(parts) > 5 else ""
            # writable memory only: what a process put there at run time
            if "r" not in perms or "w" not in perms or name.startswith("/dev"):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            read_any = True
            for w in words:
                counts[w] += data.count(w)
    if not read_any:
        sys.exit(2)
    for w in words:
        print(w.decode(), counts[w])


main()

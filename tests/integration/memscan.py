#!/usr/bin/env python3
"""tests/integration/memscan.py PID < SECRETS: look for secrets in a running
process's writable memory (heap, stacks, anonymous mappings, libraries'
data), read through /proc/PID/mem.

SECRETS: one per line on standard input (not argv, which ps shows); blank
lines are skipped. Prints each secret found as its line number, where it
was found and the bytes around it with the secret itself masked, never the
secret. Exit 0: none found; 1: some found; 2: the memory could not be read
(not root, or Yama's ptrace restriction), said on stderr. Mappings over
1 GiB (AddressSanitizer's shadow) are skipped, and named on stderr.
It only reads; it never stops, signals or writes to the process.
"""
import re
import sys

HUGE = 1 << 30  # a writable mapping larger than this is no heap or stack

def regions(pid):
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            if not m or not m.group(3).startswith("rw"):
                continue
            name = m.group(4).strip()
            if name in ("[vvar]", "[vsyscall]", "[vdso]"):
                continue
            yield int(m.group(1), 16), int(m.group(2), 16), name or "anonymous"

def main():
    if len(sys.argv) != 2:
        print("usage: memscan.py PID < SECRETS", file=sys.stderr)
        return 2
    pid = sys.argv[1]
    secrets = [s.encode() for s in sys.stdin.read().splitlines() if s.strip()]
    found = 0
    read_any = False
    try:
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError as e:
        print(f"memscan: /proc/{pid}/mem: {e.strerror}", file=sys.stderr)
        return 2
    with mem:
        for start, end, name in regions(pid):
            if end - start > HUGE:
                # AddressSanitizer's shadow (terabytes, reserved, not
                # data): reading it would take hours.
                print(f"memscan: skipped {name} at {start:#x}, "
                      f"{(end - start) >> 30} GiB", file=sys.stderr)
                continue
            step = 1 << 24
            for at in range(start, end, step):
                # Overlap the chunks so a secret across a boundary is seen.
                n = min(step + 4096, end - at)
                try:
                    mem.seek(at)
                    data = mem.read(n)
                except OSError:
                    continue
                read_any = True
                for i, s in enumerate(secrets, 1):
                    pos = data.find(s)
                    if pos >= 0 and pos < step:
                        found += 1
                        ctx = data[max(0, pos - 48):pos + len(s) + 48]
                        ctx = ctx.replace(s, b"<SECRET>")
                        shown = "".join(chr(c) if 32 <= c < 127 else "." for c in ctx)
                        print(f"secret {i} in {name} at {at + pos:#x}: {shown}")
    if not read_any:
        print(f"memscan: nothing of process {pid} could be read", file=sys.stderr)
        return 2
    return 1 if found else 0

if __name__ == "__main__":
    sys.exit(main())

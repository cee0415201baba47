#!/usr/bin/env python3
"""Leader probe: prints the 0-based index of the member whose `srvr` four-letter word
says `Mode: leader` (or `Mode: standalone` for a single node).

    leader.py HOST:PORT,HOST:PORT,...     (faultline's {nodes})

Exits 1, printing nothing, when no member says so (an election is under way).
"""
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 0.5


def mode(addr):
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as s:
            s.settimeout(TIMEOUT_S)
            s.sendall(b"srvr")
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
    except (OSError, ValueError):
        return None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def main():
    nodes = (sys.argv[1] if len(sys.argv) > 1 else "").split(",")
    nodes = [n for n in nodes if n]
    if not nodes:
        print("usage: leader.py HOST:PORT,...", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        modes = list(pool.map(mode, nodes))
    leaders = [i for i, m in enumerate(modes) if m in ("leader", "standalone")]
    if len(leaders) != 1:
        return 1
    print(leaders[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Leader probe: prints the client address (host:port) of the primary that a majority of
the sentinels name (SENTINEL get-master-addr-by-name mymaster, asked of the sentinel on
every node's host, port 26379).

    leader.py HOST:PORT,HOST:PORT,...     (faultline's {nodes})

Exits 1, printing nothing, when no address has a majority (a failover is under way, or
too few sentinels answer).
"""
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import redis

SENTINEL_PORT = int(os.environ.get("SENTINEL_PORT", "26379"))
MASTER_NAME = os.environ.get("SENTINEL_MASTER", "mymaster")


def ask(addr):
    host = addr.rsplit(":", 1)[0]
    try:
        r = redis.Redis(host=host, port=SENTINEL_PORT, socket_timeout=0.5, socket_connect_timeout=0.5)
        reply = r.execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        r.close()
    except Exception:
        return None
    if not reply or len(reply) != 2:
        return None
    h, p = reply
    return "%s:%s" % (h.decode() if isinstance(h, bytes) else h, int(p))


def main():
    nodes = [n for n in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if n]
    if not nodes:
        print("usage: leader.py HOST:PORT,...", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        said = [a for a in pool.map(ask, nodes) if a]
    if not said:
        return 1
    addr, votes = Counter(said).most_common(1)[0]
    if votes <= len(nodes) // 2:
        return 1
    print(addr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

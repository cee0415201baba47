#!/usr/bin/env python3
"""Prints the 0-based index of the etcd leader among the members given as
`host:port,host:port,...` (argv[1], else FAULTLINE_NODES), as the built-in client finds it
(workloads/src/etcd.rs `leader`): every member is asked for /v3/maintenance/status at
once (500 ms each); each status names the leader by member id and carries its own member
id in its header; the leader is the member most statuses name. Prints nothing and exits 1
when no member knows one. Python standard library only.
"""

import http.client
import json
import os
import re
import sys
import threading

STATUS_TIMEOUT = 0.5

_U64 = re.compile(r"\+?[0-9]+")


def uint64_field(v):
    """A uint64 field written as a string (member ids often exceed i64) or a number."""
    if isinstance(v, str):
        n = int(v) if _U64.fullmatch(v) else None
    elif isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        n = None
    return n if n is not None and 0 <= n < 2 ** 64 else None


def status_of(addr):
    """The member's status (a JSON object), or None on any error or non-2xx status."""
    try:
        addr = addr.strip().rstrip("/")
        for scheme in ("http://", "https://"):
            if addr.startswith(scheme):
                addr = addr[len(scheme):]
        host, _, port = addr.rpartition(":")
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=STATUS_TIMEOUT)
        try:
            conn.request("POST", "/v3/maintenance/status", body=b"{}",
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            if not 200 <= resp.status < 300:
                return None
            return json.loads(raw)
        finally:
            conn.close()
    except Exception:
        return None


def leader_from_statuses(statuses):
    def member_id(s):
        header = s.get("header") if isinstance(s, dict) else None
        return uint64_field(header.get("member_id")) if isinstance(header, dict) else None

    ids = [member_id(s) for s in statuses]
    votes = [0] * len(statuses)
    for s in statuses:
        if not isinstance(s, dict):
            continue
        leader = uint64_field(s.get("leader"))
        if leader is None:
            continue
        if leader in ids:
            votes[ids.index(leader)] += 1
    best, count = None, 0
    for i, c in enumerate(votes):
        if c >= count:  # on a tie the last, as Rust's max_by_key
            best, count = i, c
    return best if count > 0 else None


def main(argv):
    spec = argv[1] if len(argv) > 1 else os.environ.get("FAULTLINE_NODES", "")
    nodes = [n for n in spec.split(",") if n.strip()]
    statuses = [None] * len(nodes)

    def probe(i):
        statuses[i] = status_of(nodes[i])

    threads = [threading.Thread(target=probe, args=(i,), daemon=True) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * STATUS_TIMEOUT + 0.5)
    leader = leader_from_statuses(list(statuses))
    if leader is None:
        return 1
    print(leader)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)

#!/usr/bin/env python3
"""faultline adapter (protocol v1) for Redis 7 with Sentinel, through redis-py.

    adapter.py NODE        NODE: host:port of the node this process is bound to

For every operation the adapter asks the sentinel on its own node's host (port 26379,
SENTINEL_PORT to change it) for the current primary of "mymaster"
(SENTINEL get-master-addr-by-name), as a Sentinel-aware client does, and sends the
command to that primary:

- read: GET (null when the key is missing). With FAULTLINE_SERIALIZABLE=1 the GET goes to
  the bound node's own redis-server instead (a replica's copy, possibly stale).
- write: SET.
- cas: one EVAL of a Lua script that compares the value with `from` and, if equal, SETs
  `to`, atomically; it returns 1 if it swapped, 0 if not (a `fail`).

No WAIT: an acknowledged write is acknowledged by the primary alone, and replication is
asynchronous.

Classification: anything that ends the operation before its command leaves the adapter
(the sentinel unreachable, slow or without a primary, the primary refusing the
connection) is `fail`. An error reply (READONLY from a primary that was demoted, LOADING,
...) is `fail`: Redis refused the command before applying it. A timeout or a lost
connection after the command was sent is `info` for write and cas, `fail` for read.
"""

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

PROTOCOL = 1
MASTER_NAME = os.environ.get("SENTINEL_MASTER", "mymaster")
SENTINEL_PORT = int(os.environ.get("SENTINEL_PORT", "26379"))
# Give up this long before faultline's own deadline.
MARGIN_S = 0.15
# The longest the sentinel may take to name the primary.
SENTINEL_TIMEOUT_S = 0.5

CAS_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

logging.basicConfig(
    stream=sys.stderr,
    level=logging.WARNING,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
log = logging.getLogger("adapter")

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class NotSent(Exception):
    """The command never left the adapter."""


class Unknown(Exception):
    """The command was sent; its outcome is unknown."""


class Refused(Exception):
    """Redis answered with an error: the command was not applied."""


def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


class Client:
    """One per thread: the connections to the sentinel and to the current primary."""

    def __init__(self, node):
        self.node = node
        self.node_host, self.node_port = split_addr(node)
        self.sentinel = None
        self.conns = {}  # (host, port) -> Connection

    def _connection(self, host, port):
        conn = self.conns.get((host, port))
        if conn is None:
            conn = Connection(
                host=host,
                port=port,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
            self.conns[(host, port)] = conn
        return conn

    def _ready(self, conn, deadline):
        """Connects `conn` if needed, within the deadline; raises NotSent on failure."""
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            raise NotSent("no time left before sending")
        try:
            if conn._sock is not None:
                # A connection the server closed while idle reads as EOF: reconnect
                # rather than send into it.
                try:
                    if conn.can_read(timeout=0):
                        conn.disconnect()
                except (RedisConnectionError, OSError):
                    conn.disconnect()
            conn.socket_connect_timeout = remaining
            conn.socket_timeout = remaining
            if conn._sock is None:
                conn.connect()
            conn._sock.settimeout(max(deadline - time.monotonic(), 0.01))
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            conn.disconnect()
            raise NotSent("connecting to %s:%s: %s" % (conn.host, conn.port, e))

    def command(self, host, port, deadline, *args):
        """Sends one command and reads its reply."""
        conn = self._connection(host, port)
        self._ready(conn, deadline)
        try:
            conn.send_command(*args)
            return conn.read_response()
        except ResponseError as e:
            raise Refused(str(e).split("\n")[0][:120])
        except (RedisTimeoutError, RedisConnectionError, OSError) as e:
            conn.disconnect()
            raise Unknown("%s after the command was sent to %s:%s" % (type(e).__name__, host, port))
        except Exception as e:
            conn.disconnect()
            raise Unknown("%s: %s" % (type(e).__name__, e))

    def primary(self, deadline):
        """The primary's (host, port) as the bound node's sentinel names it."""
        d = min(deadline, time.monotonic() + SENTINEL_TIMEOUT_S)
        try:
            reply = self.command(
                self.node_host, SENTINEL_PORT, d, "SENTINEL", "get-master-addr-by-name", MASTER_NAME
            )
        except NotSent as e:
            raise NotSent("sentinel: %s" % e)
        except (Unknown, Refused) as e:
            raise NotSent("sentinel: %s" % e)
        if not reply or len(reply) != 2:
            raise NotSent("sentinel knows no primary")
        host, port = reply
        return host.decode() if isinstance(host, bytes) else host, int(port)

    def read(self, key, deadline, serializable):
        if serializable:
            host, port = self.node_host, self.node_port
        else:
            host, port = self.primary(deadline)
        v = self.command(host, port, deadline, "GET", key)
        return None if v is None else int(v)

    def write(self, key, value, deadline):
        host, port = self.primary(deadline)
        self.command(host, port, deadline, "SET", key, str(value))

    def cas(self, key, old, new, deadline):
        host, port = self.primary(deadline)
        return self.command(host, port, deadline, "EVAL", CAS_SCRIPT, 1, key, str(old), str(new)) == 1

    def close(self):
        for c in self.conns.values():
            try:
                c.disconnect()
            except Exception:
                pass


_local = threading.local()
_clients = []
_clients_lock = threading.Lock()


def client_for_thread(node):
    c = getattr(_local, "client", None)
    if c is None:
        c = Client(node)
        _local.client = c
        with _clients_lock:
            _clients.append(c)
    return c


def handle(node, req, serializable):
    rid = req.get("id")
    f = req.get("f")
    key = "faultline:" + str(req.get("key"))
    timeout_ms = req.get("timeout_ms") or 1000
    budget = max(timeout_ms / 1000.0 - MARGIN_S, timeout_ms / 2000.0)
    deadline = time.monotonic() + budget
    client = client_for_thread(node)
    try:
        if f == "read":
            return {"id": rid, "type": "ok", "value": client.read(key, deadline, serializable)}
        if f == "write":
            client.write(key, int(req["value"]), deadline)
            return {"id": rid, "type": "ok"}
        if f == "cas":
            old, new = req["value"]
            if client.cas(key, int(old), int(new), deadline):
                return {"id": rid, "type": "ok"}
            return {"id": rid, "type": "fail", "error": "cas-mismatch"}
        return {"id": rid, "type": "fail", "error": "unsupported operation %r" % f}
    except NotSent as e:
        return {"id": rid, "type": "fail", "error": "not-sent: %s" % e}
    except Refused as e:
        return {"id": rid, "type": "fail", "error": "refused: %s" % e}
    except Unknown as e:
        return {"id": rid, "type": "fail" if f == "read" else "info", "error": str(e)}
    except Exception as e:
        log.exception("request %r", req)
        return {
            "id": rid,
            "type": "fail" if f == "read" else "info",
            "error": "%s: %s" % (type(e).__name__, e),
        }


def main():
    node = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FAULTLINE_NODE", "")
    if not node:
        print("usage: adapter.py HOST:PORT (or FAULTLINE_NODE)", file=sys.stderr)
        return 2
    serializable = os.environ.get("FAULTLINE_SERIALIZABLE", "0") == "1"
    emit(
        {
            "faultline_adapter": PROTOCOL,
            "ops": ["read", "write", "cas"],
            "name": "redis-sentinel (redis-py %s)%s"
            % (redis.__version__, ", reads from the bound node" if serializable else ""),
        }
    )
    pool = ThreadPoolExecutor(max_workers=16)

    def run(req):
        try:
            emit(handle(node, req, serializable))
        except Exception:
            log.exception("answering %r", req)

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError:
            log.warning("ignoring a line that is not JSON: %r", line[:200])
            continue
        pool.submit(run, req)
    # stdin closed: requests in flight end by their own deadlines; wait a moment, then go.
    pool.shutdown(wait=False, cancel_futures=True)
    end = time.monotonic() + 1.0
    for t in list(threading.enumerate()):
        if t is not threading.current_thread() and not t.daemon:
            t.join(max(end - time.monotonic(), 0))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

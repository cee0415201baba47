#!/usr/bin/env python3
"""faultline adapter (protocol v1) for ZooKeeper 3.8, through kazoo.

    adapter.py NODE        NODE: host:port of the one member this process talks to

Keys are znodes /faultline/<key> holding the value as decimal text.

- read: sync(path) then get(path) (FAULTLINE_SERIALIZABLE=1: a plain get, on a session of
  its own to the same member, served from the member's own state, which may lag); a
  missing znode reads as null.
- write: set(path); if the znode does not exist, create it (a concurrent create that
  wins makes this a set again).
- cas: get(path) -> (value, stat); value != from -> fail; set(path, to,
  version=stat.version); BadVersion or NoNode -> fail.

Classification: a request is only handed to kazoo while the session is connected;
anything that ends it before that is `fail` (never sent). After it was handed over, an
answer from the server (NoNode, BadVersion, NodeExists) is definite; a lost connection,
an expired or moved session, or no answer in time is `info` for write and cas, and
`fail` for read (a read changes nothing).
"""

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
)

PROTOCOL = 1
ROOT = "/faultline"
# Give up this long before faultline's own deadline.
MARGIN_S = 0.15
SESSION_TIMEOUT_S = float(os.environ.get("ZK_SESSION_TIMEOUT_S", "5"))

try:
    import kazoo.version as _kv

    KAZOO_VERSION = _kv.__version__
except Exception:  # pragma: no cover
    KAZOO_VERSION = "?"

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
    """The request never left the adapter."""


class Unknown(Exception):
    """The request was handed to the connection; its outcome is unknown."""


class Session:
    """One kazoo client, that is one ZooKeeper session, bound to one member."""

    def __init__(self, node, name):
        self.node = node
        self.name = name
        self.connected = threading.Event()
        self.closing = False
        self.zk = KazooClient(
            hosts=node,
            timeout=SESSION_TIMEOUT_S,
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 1.0},
            command_retry=None,
            logger=logging.getLogger("kazoo"),
        )
        self.zk.add_listener(self._on_state)
        # Connects in the background: the handshake does not wait for the node.
        self.zk.start_async()

    def _on_state(self, state):
        if state == KazooState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()
        # kazoo recovers by itself: after an expiry (LOST) it connects again with a new
        # session. LOST is also the state a closing client ends in (marked "closing").
        log.warning(
            "%s session state: %s%s", self.name, state, " (closing)" if self.closing else ""
        )

    def close(self):
        self.closing = True
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass

    def call(self, deadline, method, *args, **kwargs):
        """Runs kazoo's `method_async(*args)` and waits for its result until `deadline`.

        Raises NotSent when the session is not connected before the deadline (nothing
        was handed to kazoo), Unknown when the request was handed over but no answer
        came (timeout, connection loss, session expiry), and the server's own error
        (NoNodeError, BadVersionError, ...) when it answered with one.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self.connected.wait(remaining):
            raise NotSent("not connected to " + self.node)
        if not self.zk.connected:
            raise NotSent("not connected to " + self.node)
        try:
            result = getattr(self.zk, method + "_async")(*args, **kwargs)
        except Exception as e:  # raised before anything was queued
            raise NotSent("%s: %s" % (type(e).__name__, e))
        remaining = deadline - time.monotonic()
        try:
            return result.get(timeout=max(remaining, 0.001))
        except (NoNodeError, BadVersionError, NodeExistsError):
            raise
        except self.zk.handler.timeout_exception:
            raise Unknown("timeout after the request was sent")
        except Exception as e:
            # ConnectionLoss, SessionExpiredError, SessionMovedError, OperationTimeout...
            raise Unknown("%s after the request was sent" % (type(e).__name__ or "error"))


class Client:
    """Writes, cas and sync reads on one session. Plain reads (serializable) on a second
    session to the same member: ZooKeeper answers a session's requests in order, so a
    plain read sent behind the same session's write would wait for the leader too, and
    the read-only clients plain reads are meant for have sessions of their own."""

    def __init__(self, node, serializable):
        self.node = node
        self.serializable = serializable
        self.main = Session(node, "main")
        self.reads = Session(node, "reads") if serializable else self.main

    def close(self):
        for s in {id(self.main): self.main, id(self.reads): self.reads}.values():
            s.close()

    def call(self, deadline, method, *args, **kwargs):
        return self.main.call(deadline, method, *args, **kwargs)

    # -- operations ------------------------------------------------------------------

    def read(self, path, deadline):
        if not self.serializable:
            self.call(deadline, "sync", path)
        try:
            data, _stat = self.reads.call(deadline, "get", path)
        except NoNodeError:
            return None
        return int(data.decode())

    def write(self, path, value, deadline):
        data = str(value).encode()
        while True:
            try:
                self.call(deadline, "set", path, data)
                return
            except NoNodeError:
                pass  # not applied: the znode does not exist yet
            try:
                self.call(deadline, "create", path, data, makepath=True)
                return
            except NodeExistsError:
                pass  # not applied: someone created it meanwhile; set it

    def cas(self, path, old, new, deadline):
        """True if swapped, False if the comparison failed (nothing applied)."""
        try:
            data, stat = self.call(deadline, "get", path)
        except NoNodeError:
            return False
        except Unknown as e:
            # Only the read went out: the set was never sent.
            raise NotSent("the get before the set: %s" % e)
        if int(data.decode()) != old:
            return False
        try:
            self.call(deadline, "set", path, str(new).encode(), version=stat.version)
            return True
        except (BadVersionError, NoNodeError):
            return False


def handle(client, req):
    rid = req.get("id")
    f = req.get("f")
    key = str(req.get("key"))
    timeout_ms = req.get("timeout_ms") or 1000
    budget = max(timeout_ms / 1000.0 - MARGIN_S, timeout_ms / 2000.0)
    deadline = time.monotonic() + budget
    path = ROOT + "/" + key
    try:
        if f == "read":
            return {"id": rid, "type": "ok", "value": client.read(path, deadline)}
        if f == "write":
            client.write(path, int(req["value"]), deadline)
            return {"id": rid, "type": "ok"}
        if f == "cas":
            old, new = req["value"]
            if client.cas(path, int(old), int(new), deadline):
                return {"id": rid, "type": "ok"}
            return {"id": rid, "type": "fail", "error": "cas-mismatch"}
        return {"id": rid, "type": "fail", "error": "unsupported operation %r" % f}
    except NotSent as e:
        return {"id": rid, "type": "fail", "error": "not-sent: %s" % e}
    except Unknown as e:
        return {"id": rid, "type": "fail" if f == "read" else "info", "error": str(e)}
    except Exception as e:
        # Anything unexpected: unknown outcome, unless it changes nothing.
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
            "name": "zookeeper (kazoo %s)%s" % (KAZOO_VERSION, " serializable reads" if serializable else ""),
        }
    )
    client = Client(node, serializable)
    pool = ThreadPoolExecutor(max_workers=16)

    def run(req):
        try:
            emit(handle(client, req))
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
    # stdin closed: give requests in flight a moment, close the session, and go
    # (faultline kills an adapter that is still there 2 s after closing its stdin).
    pool.shutdown(wait=False, cancel_futures=True)
    closer = threading.Thread(target=client.close, daemon=True)
    closer.start()
    closer.join(1.0)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

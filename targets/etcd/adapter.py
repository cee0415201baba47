#!/usr/bin/env python3
"""faultline adapter (protocol v1) for etcd 3.4+, through etcd's v3 JSON gateway.

The same requests and the same ok/fail/info classification as faultline's built-in etcd
client (workloads/src/etcd.rs), so that `--target targets/etcd` and `--target etcd` give the
same verdicts:

- read: POST /v3/kv/range of the key (`serializable: true` when FAULTLINE_SERIALIZABLE=1);
- write: POST /v3/kv/put;
- cas [from, to]: a txn comparing the key's value with `from`, putting `to`;
- acquire: a lease of ceil(ttl_ms / 1000) s (at least 1), then a txn creating
  `__lock/<name>` under it only if its create revision is 0; the fencing token is the
  txn's header revision (the key's create revision);
- fenced-write [token, v]: a txn putting v only if the lock key's create revision is still
  the token (`stale-token` otherwise); a plain put when FAULTLINE_UNFENCED_WRITES=1;
- release: a txn deleting the lock key if its create revision is the token (`not-held`
  otherwise), then a best-effort revoke of the lease.

Keys and values are base64 on the wire, 64-bit integers JSON strings. A 2xx is ok (or
fail for a txn whose comparison failed); gRPC errors etcd answers before proposing
anything are fail; Unavailable/DeadlineExceeded/Unknown/Internal/Canceled, timeouts and
connections lost after sending are info for anything that writes and fail for reads. A
member that cannot be connected to is skipped for the next one (nothing was sent), at most
3 members per request, as the built-in client does.

Python standard library only. Run as a program it speaks the protocol on stdin/stdout; the
request handling is `Adapter.handle(request) -> answer`, importable by other adapters.
"""

import base64
import binascii
import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time

PROTOCOL = 1
OPS = ["read", "write", "cas", "acquire", "release", "fenced-write"]
NAME = "etcd (Python adapter, v3 JSON gateway)"

# Members tried per request when connections are refused (etcd.rs MAX_HOPS).
MAX_HOPS = 3
# Time allowed to open a TCP connection; a member that does not accept within it is
# treated as down (etcd.rs CONNECT_TIMEOUT).
CONNECT_TIMEOUT = 0.5
# Prefix of lock keys (etcd.rs LOCK_PREFIX).
LOCK_PREFIX = "__lock/"
# Shortest lease TTL asked for, in seconds (etcd rounds TTLs to whole seconds).
MIN_LEASE_TTL_S = 1
# Time given to the best-effort lease revoke.
REVOKE_TIMEOUT = 0.5
# Used when a request carries no usable timeout_ms.
DEFAULT_TIMEOUT_MS = 1000

# What one gateway call came to.
OK = "ok"                    # 2xx, with its JSON body (None if the body was not JSON)
REFUSED = "refused"          # a gRPC error etcd answers before proposing anything
UNKNOWN = "unknown"          # timeout, lost connection, Unavailable: outcome unknown
UNREACHABLE = "unreachable"  # the connection could not be opened: nothing was sent

_I64 = re.compile(r"[+-]?[0-9]+")
_U64 = re.compile(r"\+?[0-9]+")
_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1
_U64_MAX = 2 ** 64 - 1


def b64(text):
    if isinstance(text, str):
        text = text.encode("utf-8")
    return base64.b64encode(text).decode("ascii")


def b64_decode(text):
    """Padded or unpadded standard base64, as etcd.rs's b64::decode; None otherwise."""
    body = text.rstrip("=")
    if len(text) - len(body) > 2 or len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def lock_key(name):
    return LOCK_PREFIX + name


def parse_i64(v):
    """A 64-bit integer written as a JSON string or number (serde's as_i64)."""
    if isinstance(v, str):
        if not _I64.fullmatch(v):
            return None
        n = int(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        return None
    return n if _I64_MIN <= n <= _I64_MAX else None


def parse_u64(v):
    if isinstance(v, str):
        if not _U64.fullmatch(v):
            return None
        n = int(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        return None
    return n if 0 <= n <= _U64_MAX else None


def int_field(obj, field):
    return parse_i64(obj.get(field)) if isinstance(obj, dict) else None


def header_revision(body):
    """The header revision of a reply: for a txn that put a new key, its create revision."""
    if not isinstance(body, dict) or "header" not in body:
        return None
    return int_field(body["header"], "revision")


def txn_succeeded(body):
    """Whether a txn's comparisons held (`succeeded` is omitted when false)."""
    return isinstance(body, dict) and body.get("succeeded") is True


def range_value(body):
    """The value of a range reply's first key: None when absent, an int when it is one,
    else the text, so corruption stays visible."""
    kvs = body.get("kvs") if isinstance(body, dict) else None
    if not isinstance(kvs, list) or not kvs:
        return None
    kv = kvs[0]
    raw = kv.get("value") if isinstance(kv, dict) else None
    if not isinstance(raw, str):
        raw = ""
    data = b64_decode(raw)
    if data is None:
        return "undecodable base64: " + raw
    text = data.decode("utf-8", errors="replace")
    n = parse_i64(text) if _I64.fullmatch(text) else None
    return n if n is not None else text


def classify_error(status, body):
    """A non-2xx gateway answer: (UNKNOWN or REFUSED, what)."""
    if not isinstance(body, dict):
        body = {}
    v = body["error"] if "error" in body else body.get("message")
    text = v if isinstance(v, str) else ""
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or not (_I64_MIN <= code <= _I64_MAX):
        code = None
    if text:
        while text.startswith("etcdserver: "):
            text = text[len("etcdserver: "):]
        what = text.replace(" ", "-")
    else:
        what = "http-%d" % status
    # gRPC codes: 4 DeadlineExceeded, 14 Unavailable, 2 Unknown, 13 Internal, 1 Canceled.
    ambiguous = code in (1, 2, 4, 13, 14) or (code is None and (status >= 500 or status == 408))
    return (UNKNOWN if ambiguous else REFUSED), what


def split_addr(addr):
    addr = addr.strip().rstrip("/")
    for scheme in ("http://", "https://"):
        if addr.startswith(scheme):
            addr = addr[len(scheme):]
    host, _, port = addr.rpartition(":")
    if not host:
        return addr, 80
    return host.strip("[]"), int(port)


def _dropped(sock):
    """Whether an idle keep-alive connection was closed by the peer (readable when idle
    means EOF or junk): such a connection is not reused."""
    if sock is None:
        return True
    try:
        p = select.poll()
        p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(p.poll(0))
    except (OSError, ValueError):
        return True


class Gateway:
    """POSTs to members' JSON gateways over keep-alive connections (one per member)."""

    def __init__(self):
        self.conns = {}

    def close(self, addr):
        conn = self.conns.pop(addr, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def post(self, addr, path, body, timeout):
        """One POST to `addr` + `path`, within `timeout` seconds: (kind, payload)."""
        if timeout <= 0:
            return UNKNOWN, "timeout"
        deadline = time.monotonic() + timeout
        conn = self.conns.get(addr)
        if conn is not None and _dropped(conn.sock):
            self.close(addr)
            conn = None
        if conn is None:
            try:
                host, port = split_addr(addr)
            except ValueError:
                return UNREACHABLE, "connect: bad address %r" % addr
            connect_timeout = min(CONNECT_TIMEOUT, timeout)
            try:
                sock = socket.create_connection((host, port), timeout=connect_timeout)
            except socket.timeout:
                if connect_timeout < CONNECT_TIMEOUT:
                    # The request's own time ran out while connecting (reqwest's total
                    # timeout, not its connect timeout): the built-in client says timeout.
                    return UNKNOWN, "timeout"
                return UNREACHABLE, "connect: timed out"
            except OSError as e:
                return UNREACHABLE, "connect: %s" % e
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = http.client.HTTPConnection(host, port)
            conn.sock = sock
            self.conns[addr] = conn
        data = json.dumps(body).encode("utf-8")
        try:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            conn.request("POST", path, body=data,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            conn.sock and conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            raw = resp.read()
            status = resp.status
        except socket.timeout:
            self.close(addr)
            return UNKNOWN, "timeout"
        except Exception as e:  # OSError, http.client.HTTPException, anything else
            self.close(addr)
            return UNKNOWN, "connection-lost: %s" % (str(e) or type(e).__name__)
        if conn.sock is None or resp.will_close:
            self.close(addr)
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            parsed = None
        if 200 <= status < 300:
            return OK, parsed
        return classify_error(status, parsed)


def _revoke(addr, lease_id):
    """Revokes a lease without waiting for the outcome to matter: it only shortens how
    long an abandoned lease lingers. Runs on its own thread and connection."""
    def run():
        gw = Gateway()
        try:
            gw.post(addr, "/v3/lease/revoke", {"ID": str(lease_id)}, REVOKE_TIMEOUT)
        except Exception:
            pass
        finally:
            gw.close(addr)
    threading.Thread(target=run, daemon=True).start()


class BadRequest(Exception):
    pass


def _int_arg(req, field):
    v = req.get(field)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest("%s must be an integer" % field)
    return v


def _str_arg(req, field):
    v = req.get(field)
    if not isinstance(v, str):
        raise BadRequest("%s must be text" % field)
    return v


class Adapter:
    """The adapter's request handling, independent of stdin/stdout.

    `nodes`: members' client addresses in node order; `node_index`: the member this
    process is bound to (requests start there and move on only past members that refuse
    the connection). Defaults come from FAULTLINE_* in `env`."""

    def __init__(self, nodes=None, node_index=None, serializable=None, unfenced=None,
                 env=None):
        env = os.environ if env is None else env
        if nodes is None:
            nodes = [n for n in env.get("FAULTLINE_NODES", "").split(",") if n.strip()]
            node = env.get("FAULTLINE_NODE", "").strip()
            if not nodes and node:
                nodes = [node]
            if node_index is None and node:
                if node in nodes:
                    node_index = nodes.index(node)
        if not nodes:
            raise ValueError("no etcd member given (FAULTLINE_NODES / FAULTLINE_NODE)")
        if node_index is None:
            try:
                node_index = int(env.get("FAULTLINE_NODE_INDEX", "0"))
            except ValueError:
                node_index = 0
        self.nodes = [n.strip() for n in nodes]
        self.node_index = node_index % len(self.nodes)
        self.serializable = (env.get("FAULTLINE_SERIALIZABLE") == "1"
                             if serializable is None else serializable)
        self.unfenced = (env.get("FAULTLINE_UNFENCED_WRITES") == "1"
                         if unfenced is None else unfenced)
        self.gw = Gateway()

    def handshake(self, ops=None):
        return {"faultline_adapter": PROTOCOL, "ops": list(OPS if ops is None else ops),
                "name": NAME}

    # -- requests ------------------------------------------------------------------

    def handle(self, req):
        """Performs one protocol request (a dict) and returns its answer (a dict)."""
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            answer = self._handle(req)
        except BadRequest as e:
            answer = {"type": "fail", "error": "bad-request: %s" % e}
        except Exception as e:  # never crash; the outcome of a write is then unknown
            f = req.get("f") if isinstance(req, dict) else None
            answer = {"type": "fail" if f == "read" else "info",
                      "error": "adapter-error: %s: %s" % (type(e).__name__, e)}
        answer["id"] = rid
        return answer

    def _handle(self, req):
        if not isinstance(req, dict):
            raise BadRequest("not an object")
        f = req.get("f")
        if f not in OPS:
            raise BadRequest("unknown f %r" % (f,))
        key = _str_arg(req, "key")
        timeout_ms = req.get("timeout_ms")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) \
                or timeout_ms <= 0:
            timeout_ms = DEFAULT_TIMEOUT_MS
        # Give up a little before faultline does, so it need not replace the adapter.
        margin_ms = min(200.0, timeout_ms / 10.0)
        deadline = time.monotonic() + (timeout_ms - margin_ms) / 1000.0
        read_only = f == "read"

        if f == "read":
            args = {}
        elif f == "write":
            args = {"value": _int_arg(req, "value")}
        elif f == "cas":
            v = req.get("value")
            if not (isinstance(v, list) and len(v) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
                raise BadRequest("value must be [from, to]")
            args = {"from": v[0], "to": v[1]}
        elif f == "acquire":
            args = {"owner": _str_arg(req, "owner"), "ttl_ms": _int_arg(req, "ttl_ms")}
        elif f == "release":
            lease = req.get("lease")
            if isinstance(lease, bool) or not isinstance(lease, int):
                lease = None
            args = {"token": _int_arg(req, "token"), "lease": lease}
        else:  # fenced-write
            args = {"token": _int_arg(req, "token"), "value": _int_arg(req, "value")}

        # etcd.rs try_nodes: start at the bound member, move on only when one was
        # unreachable, at most MAX_HOPS members, never past the deadline.
        n = len(self.nodes)
        node = self.node_index
        for _ in range(min(MAX_HOPS, n)):
            if time.monotonic() >= deadline:
                break
            addr = self.nodes[node]
            result = getattr(self, "_" + f.replace("-", "_"))(addr, key, args, deadline)
            if result is not None:
                return result
            node = (node + 1) % n
        return {"type": "fail", "error": "unavailable"}

    @staticmethod
    def _left(deadline):
        return max(deadline - time.monotonic(), 0.0)

    def _post(self, addr, path, body, deadline):
        return self.gw.post(addr, path, body, self._left(deadline))

    @staticmethod
    def _from_reply(read_only, kind, why):
        """The answer a reply other than ok comes to; None when nothing was sent."""
        if kind == REFUSED:
            return {"type": "fail", "error": why}
        if kind == UNKNOWN:
            return {"type": "fail" if read_only else "info", "error": why}
        return None  # UNREACHABLE: try the next member

    def _txn(self, addr, body, refusal, deadline):
        kind, payload = self._post(addr, "/v3/kv/txn", body, deadline)
        if kind == OK:
            if txn_succeeded(payload):
                return {"type": "ok"}
            return {"type": "fail", "error": refusal}
        return self._from_reply(False, kind, payload)

    def _read(self, addr, key, args, deadline):
        body = {"key": b64(key)}
        if self.serializable:
            body["serializable"] = True
        kind, payload = self._post(addr, "/v3/kv/range", body, deadline)
        if kind == OK:
            return {"type": "ok", "value": range_value(payload)}
        return self._from_reply(True, kind, payload)

    def _put(self, addr, key, value, deadline):
        body = {"key": b64(key), "value": b64(str(value))}
        kind, payload = self._post(addr, "/v3/kv/put", body, deadline)
        if kind == OK:
            return {"type": "ok"}
        return self._from_reply(False, kind, payload)

    def _write(self, addr, key, args, deadline):
        return self._put(addr, key, args["value"], deadline)

    def _cas(self, addr, key, args, deadline):
        body = {
            "compare": [{"result": "EQUAL", "target": "VALUE",
                         "key": b64(key), "value": b64(str(args["from"]))}],
            "success": [{"request_put": {"key": b64(key), "value": b64(str(args["to"]))}}],
        }
        return self._txn(addr, body, "cas-failed", deadline)

    def _fenced_write(self, addr, key, args, deadline):
        if self.unfenced:
            return self._put(addr, key, args["value"], deadline)
        body = {
            "compare": [{"result": "EQUAL", "target": "CREATE",
                         "key": b64(lock_key(key)), "create_revision": str(args["token"])}],
            "success": [{"request_put": {"key": b64(key), "value": b64(str(args["value"]))}}],
        }
        return self._txn(addr, body, "stale-token", deadline)

    def _acquire(self, addr, key, args, deadline):
        ttl_s = max(-(-max(args["ttl_ms"], 0) // 1000), MIN_LEASE_TTL_S)
        kind, payload = self._post(addr, "/v3/lease/grant", {"TTL": str(ttl_s)}, deadline)
        if kind == UNREACHABLE:
            return None
        if kind != OK:
            # A lease alone holds no lock: whatever happened to the grant, no lock was
            # taken, so this is a definite fail.
            return {"type": "fail", "error": "grant: %s" % payload}
        lease_id = int_field(payload, "ID")
        if lease_id is None:
            return {"type": "fail", "error": "grant-without-id"}
        k = b64(lock_key(key))
        body = {
            "compare": [{"result": "EQUAL", "target": "CREATE", "key": k,
                         "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": b64(args["owner"]),
                                         "lease": str(lease_id)}}],
        }
        kind, payload = self._post(addr, "/v3/kv/txn", body, deadline)
        if kind == OK and txn_succeeded(payload):
            token = header_revision(payload)
            if token is None:
                return {"type": "info", "error": "acquire-without-revision"}
            return {"type": "ok", "value": token, "lease": lease_id}
        if kind == OK:
            _revoke(addr, lease_id)
            return {"type": "fail", "error": "lock-held"}
        if kind == REFUSED:
            _revoke(addr, lease_id)
            return {"type": "fail", "error": payload}
        # The lock may be ours, for at most the lease's TTL (unreachable included, as
        # the built-in client does).
        return {"type": "info", "error": payload}

    def _release(self, addr, key, args, deadline):
        k = b64(lock_key(key))
        body = {
            "compare": [{"result": "EQUAL", "target": "CREATE", "key": k,
                         "create_revision": str(args["token"])}],
            "success": [{"request_delete_range": {"key": k}}],
        }
        done = self._txn(addr, body, "not-held", deadline)
        if args["lease"] is not None:
            _revoke(addr, args["lease"])
        return done


# -- the protocol loop ---------------------------------------------------------------

def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(msg):
    try:
        sys.stderr.write("adapter: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def requests(stream=None):
    """Yields each request line parsed (lines that are not JSON objects are logged and
    skipped: without an id they cannot be answered)."""
    stream = sys.stdin if stream is None else stream
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError:
            log("ignoring a line that is not JSON: %r" % line[:200])
            continue
        if not isinstance(req, dict) or "id" not in req:
            log("ignoring a request without id: %r" % line[:200])
            continue
        yield req


def serve(adapter, ops=None):
    send(adapter.handshake(ops))
    for req in requests():
        send(adapter.handle(req))


def main(argv):
    try:
        kwargs = {}
        if len(argv) > 1:  # optional: the bound member's address, as `{node}`
            node = argv[1]
            nodes = [n for n in os.environ.get("FAULTLINE_NODES", "").split(",") if n]
            if node in nodes:
                kwargs = {"nodes": nodes, "node_index": nodes.index(node)}
            else:
                kwargs = {"nodes": [node], "node_index": 0}
        adapter = Adapter(**kwargs)
    except Exception as e:
        log("cannot start: %s" % e)
        return 3
    try:
        serve(adapter)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    try:
        sys.stdout.flush()
    except Exception:
        pass
    os._exit(code)

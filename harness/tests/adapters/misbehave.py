#!/usr/bin/env python3
"""A test adapter that misbehaves on purpose, to check how faultline copes with adapters
that break the protocol (docs/adapter-protocol.md, "What faultline does when an adapter
misbehaves").

It is the etcd adapter (targets/etcd/adapter.py, imported from ../../../targets/etcd
relative to this file) and answers every request correctly, except as the mode given as
argv[1] says:

  exit-at-start      when FAULTLINE_PROCESS is odd: prints a reason on stderr and exits
                     with status 3 before the handshake; even processes (and a missing or
                     unreadable FAULTLINE_PROCESS) behave, so a run goes on.
  exit-at-start-all  always prints a reason on stderr and exits with status 3 before the
                     handshake.
  die-mid-run        answers its first 5 requests, then exits (status 1) on receiving the
                     6th, without answering it.
  garbage            on every 7th request (7th, 14th, ...) prints the line "hello world"
                     instead of the answer.
  hang               on every 5th request never answers: it stops, sleeping forever without
                     reading stdin, until it is killed.
  no-cas             its handshake lists only read and write.
  bad-handshake      prints {"protocol": 9} as its first line, then reads stdin until it
                     closes without answering anything.

Requests are counted per adapter life, from 1. With no mode (or `none`) it behaves.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "..", "targets", "etcd")))

import adapter as etcd  # noqa: E402

MODES = ("none", "exit-at-start", "exit-at-start-all", "die-mid-run", "garbage", "hang",
         "no-cas", "bad-handshake")


def say(msg):
    sys.stderr.write("misbehave: %s\n" % msg)
    sys.stderr.flush()


def process_number():
    try:
        return int(os.environ.get("FAULTLINE_PROCESS", "0"))
    except ValueError:
        return 0


def main(argv):
    mode = argv[1] if len(argv) > 1 else "none"
    if mode not in MODES:
        say("unknown mode %r (known: %s)" % (mode, ", ".join(MODES)))
        return 2

    if mode == "exit-at-start-all" or (mode == "exit-at-start" and process_number() % 2 == 1):
        say("mode %s: exiting before the handshake (process %s)"
            % (mode, os.environ.get("FAULTLINE_PROCESS", "?")))
        return 3

    if mode == "bad-handshake":
        etcd.send({"protocol": 9})
        for _ in sys.stdin:
            pass
        return 0

    try:
        adapter = etcd.Adapter()
    except Exception as e:
        say("cannot start: %s" % e)
        return 3

    etcd.send(adapter.handshake(["read", "write"] if mode == "no-cas" else None))
    count = 0
    for req in etcd.requests():
        count += 1
        if mode == "die-mid-run" and count == 6:
            say("mode die-mid-run: exiting on request %d (id %s)" % (count, req.get("id")))
            sys.stderr.flush()
            os._exit(1)
        if mode == "hang" and count % 5 == 0:
            say("mode hang: never answering request %d (id %s)" % (count, req.get("id")))
            while True:
                time.sleep(3600)
        if mode == "garbage" and count % 7 == 0:
            say("mode garbage: answering request %d (id %s) with garbage"
                % (count, req.get("id")))
            sys.stdout.write("hello world\n")
            sys.stdout.flush()
            continue
        etcd.send(adapter.handle(req))
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except (BrokenPipeError, KeyboardInterrupt):
        code = 0
    try:
        sys.stdout.flush()
    except Exception:
        pass
    os._exit(code)

#!/bin/bash
# Readiness probe (target.toml [node] ready.command): a member is ready once it serves,
# that is once it has joined a quorum: its `srvr` answer says "Mode: leader" or
# "Mode: follower". An open client port alone is not enough: ZooKeeper listens on it
# before the first election ends and closes every connection until then
# ("ZooKeeperServer not running"). On a loaded machine three JVMs can take more than the
# 30 s that faultline waits for a leader after readiness, so counting the election into
# readiness gives it the readiness budget too.
#   ready.sh HOST PORT
host=$1 port=$2
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'srvr' >&3
reply=$(timeout 2 cat <&3)
exec 3<&-
if grep -Eq '^Mode: (leader|follower|standalone)' <<< "$reply"; then
    exit 0
fi
echo "not serving yet: $(head -c 200 <<< "$reply" | tr '\n' ' ')" >&2
exit 1

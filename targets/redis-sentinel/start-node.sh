#!/bin/bash
# One node of a Redis 7 + Sentinel cluster: a redis-server and a redis-sentinel, both
# children of this script (one process group: a kill or a pause takes both).
#   start-node.sh ID HOST PORT DATA_DIR PEERS
# PEERS is faultline's {peers} with peer_entry "{id}={addr}". Node 1 starts as the primary
# and every other node as its replica; every node's sentinel watches the primary
# "mymaster" (quorum 2) and listens on HOST:26379.
#
# Both config files live in DATA_DIR and are written on the first start only: Sentinel
# rewrites its own file (the current primary, the known replicas and sentinels, the
# epoch), and it rewrites redis.conf when it turns a server into a replica or a primary,
# so a restarted node comes back in the role the cluster last gave it.
set -euo pipefail

if [ $# -ne 5 ]; then
    echo "usage: $0 ID HOST PORT DATA_DIR PEERS" >&2
    exit 2
fi
id=$1 host=$2 port=$3 data_dir=$4 peers=$5
sentinel_port=${SENTINEL_PORT:-26379}
quorum=${SENTINEL_QUORUM:-2}
down_after_ms=${SENTINEL_DOWN_AFTER_MS:-2000}
failover_timeout_ms=${SENTINEL_FAILOVER_TIMEOUT_MS:-10000}

mkdir -p "$data_dir"
redis_conf="$data_dir/redis.conf"
sentinel_conf="$data_dir/sentinel.conf"

log() { echo "start-node.sh[n$id]: $*" >&2; }

# Node 1's entry in PEERS: its own address for node 1, else where this node reaches it.
first=""
IFS=',' read -ra entries <<< "$peers"
for e in "${entries[@]}"; do
    if [ "${e%%=*}" = "1" ]; then first=${e#*=}; fi
done
if [ -z "$first" ]; then
    log "no entry for node 1 in peers '$peers'"
    exit 2
fi

# The primary's real address, as every sentinel must name it alike (Sentinel finds a
# primary by address when the others ask whether it is down). {addr} may be a proxy
# (the local backend's link proxies), so ask node 1 itself: CLIENT INFO's laddr is the
# server side of the connection, node 1's own address.
primary_addr() {
    if [ "$id" = "1" ]; then
        echo "$host:$port"
        return 0
    fi
    local h=${first%:*} p=${first##*:} out laddr
    for _ in $(seq 1 120); do
        if out=$(redis-cli -h "$h" -p "$p" --raw CLIENT INFO 2>/dev/null); then
            laddr=$(echo "$out" | tr ' ' '\n' | sed -n 's/^laddr=//p')
            if [ -n "$laddr" ]; then
                echo "$laddr"
                return 0
            fi
        fi
        sleep 0.5
    done
    return 1
}

if [ ! -f "$redis_conf" ] || [ ! -f "$sentinel_conf" ]; then
    if ! primary=$(primary_addr); then
        log "node 1 ($first) did not answer within 60 s"
        exit 1
    fi
    primary_host=${primary%:*} primary_port=${primary##*:}
    log "first start; the primary is node 1 at $primary_host:$primary_port"
fi

if [ ! -f "$redis_conf" ]; then
    {
        echo "# written by start-node.sh on the first start; Sentinel may rewrite it"
        echo "protected-mode no"
        echo "dir $data_dir"
        echo "logfile \"\""
        echo "appendonly yes"
        echo "appendfsync everysec"
        echo "save \"\""
        echo "replica-announce-ip $host"
        echo "replica-announce-port $port"
        echo "repl-diskless-sync yes"
        echo "repl-diskless-sync-delay 0"
        echo "repl-timeout 10"
        if [ "$id" != "1" ]; then
            echo "replicaof $primary_host $primary_port"
        fi
    } > "$redis_conf.tmp"
    mv "$redis_conf.tmp" "$redis_conf"
fi

if [ ! -f "$sentinel_conf" ]; then
    {
        echo "# written by start-node.sh on the first start; Sentinel rewrites it"
        echo "protected-mode no"
        echo "dir $data_dir"
        echo "logfile \"\""
        echo "sentinel announce-ip $host"
        echo "sentinel announce-port $sentinel_port"
        echo "sentinel monitor mymaster $primary_host $primary_port $quorum"
        echo "sentinel down-after-milliseconds mymaster $down_after_ms"
        echo "sentinel failover-timeout mymaster $failover_timeout_ms"
        echo "sentinel parallel-syncs mymaster 1"
    } > "$sentinel_conf.tmp"
    mv "$sentinel_conf.tmp" "$sentinel_conf"
fi

# Per-start settings on the command line (they override the file).
redis-server "$redis_conf" --bind "$host" --port "$port" \
    --replica-announce-ip "$host" --replica-announce-port "$port" &
server=$!
redis-sentinel "$sentinel_conf" --bind "$host" --port "$sentinel_port" &
sentinel=$!
log "redis-server pid $server on $host:$port, redis-sentinel pid $sentinel on $host:$sentinel_port"

stop() {
    kill -TERM "$server" "$sentinel" 2>/dev/null || true
    wait "$server" "$sentinel" 2>/dev/null || true
    exit 0
}
trap stop TERM INT

# When either exits, take the other down too: the node is down.
set +e
wait -n "$server" "$sentinel"
rc=$?
log "a child exited (status $rc); stopping the node"
kill -TERM "$server" "$sentinel" 2>/dev/null
wait
exit "$rc"

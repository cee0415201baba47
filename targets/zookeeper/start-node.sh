#!/bin/sh
# One ZooKeeper 3.8 ensemble member, in the foreground.
#   start-node.sh ID HOST CLIENT_PORT DATA_DIR PEERS
# PEERS is faultline's {peers} with peer_entry "{id}={addr}": "1=h1:p1,2=h2:p2,...".
# Only the host part of each entry is used: every member listens for its peers on
# HOST:2888 (quorum) and HOST:3888 (leader election), and for clients on HOST:CLIENT_PORT.
# zoo.cfg and myid are rewritten on every start (they depend only on the arguments);
# the data (snapshots, transaction log) in DATA_DIR/version-2 is kept.
set -eu

if [ $# -ne 5 ]; then
    echo "usage: $0 ID HOST CLIENT_PORT DATA_DIR PEERS" >&2
    exit 2
fi
id=$1 host=$2 port=$3 data_dir=$4 peers=$5
quorum_port=${ZK_QUORUM_PORT:-2888}
election_port=${ZK_ELECTION_PORT:-3888}

mkdir -p "$data_dir"
cfg="$data_dir/zoo.cfg"
tmp="$cfg.tmp"
{
    echo "# written by start-node.sh on every start"
    echo "tickTime=500"
    # followers get 10 s to sync with a new leader, and are dropped after 2 s of silence
    echo "initLimit=20"
    echo "syncLimit=4"
    # give up on an unreachable peer's election port after 1 s (default 5 s)
    echo "cnxTimeout=1000"
    echo "dataDir=$data_dir"
    echo "clientPort=$port"
    echo "clientPortAddress=$host"
    echo "quorumListenOnAllIPs=false"
    echo "maxClientCnxns=0"
    echo "preAllocSize=4096"
    echo "autopurge.snapRetainCount=3"
    echo "autopurge.purgeInterval=1"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=srvr,stat,ruok,mntr,conf"
    echo "$peers" | tr ',' '\n' | while IFS='=' read -r pid paddr; do
        [ -n "$pid" ] || continue
        if [ "$pid" = "$id" ]; then
            phost=$host
        else
            # the host part of host:port (IPv4 or a name)
            phost=${paddr%:*}
        fi
        echo "server.$pid=$phost:$quorum_port:$election_port"
    done
} > "$tmp"
mv "$tmp" "$cfg"
echo "$id" > "$data_dir/myid"

echo "start-node.sh: node $id on $host, clients on port $port; $cfg:" >&2
sed 's/^/  /' "$cfg" >&2

# The classpath Debian's /etc/zookeeper/conf/environment uses (zookeeper.jar names its
# dependencies in its manifest), plus slf4j-simple so the server logs to stderr.
cp="/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
exec java \
    -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
    -Djava.net.preferIPv4Stack=true \
    -Dzookeeper.log.dir="$data_dir" \
    -Dzookeeper.admin.enableServer=false \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSS" \
    -cp "$cp" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"

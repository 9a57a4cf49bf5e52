#!/bin/bash
# Starts the apache/kafka image as `make up` starts its local broker (ops/local/kafka.py):
# one KRaft node that authenticates every client with SCRAM-SHA-512 and lets each do only
# what its ACLs allow. The image formats its storage without credentials, and SCRAM
# credentials in KRaft live in the cluster's metadata, so this script formats the storage
# itself (once), with a credential for every principal of contracts.principals.
# docker-compose.yml and the tests' testcontainers path run it; tests/test_docker_compose.py
# checks it against the code.
#
# Reads: CLUSTER_ID, KAFKA_LOG_DIRS, KAFKA_ADVERTISED_LISTENERS (INTERNAL and HOST),
# KAFKA_CONTROLLER_QUORUM_VOTERS, and KAFKA_<PRINCIPAL>_PASSWORD for each principal and the
# controller; KAFKA_LISTENERS, KAFKA_HOME and KAFKA_CONFIG_DIR have the image's defaults.
set -euo pipefail

principals="booking workouts credits analytics platform store subscriber ops"
mechanism=SCRAM-SHA-512
kafka_home="${KAFKA_HOME:-/opt/kafka}"
config_dir="${KAFKA_CONFIG_DIR:-/tmp/kafka}"
listeners="${KAFKA_LISTENERS:-INTERNAL://:29092,HOST://:9092,CONTROLLER://:9093}"
properties="$config_dir/server.properties"

password_of() {
    local variable="KAFKA_${1^^}_PASSWORD"
    printf '%s' "${!variable:?is the password of the Kafka principal $1}"
}

: "${CLUSTER_ID:?a cluster id, 22 characters of URL-safe base64}"
: "${KAFKA_LOG_DIRS:?where the broker keeps its data}"
: "${KAFKA_ADVERTISED_LISTENERS:?INTERNAL://... and HOST://... addresses for clients}"
: "${KAFKA_CONTROLLER_QUORUM_VOTERS:?1@host:9093}"
ops_password="$(password_of ops)"
controller_password="$(password_of controller)"

mkdir -p "$config_dir"
umask 077
scram=org.apache.kafka.common.security.scram.ScramLoginModule
plain=org.apache.kafka.common.security.plain.PlainLoginModule
cat >"$properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=$KAFKA_CONTROLLER_QUORUM_VOTERS
listeners=$listeners
advertised.listeners=$KAFKA_ADVERTISED_LISTENERS
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=$mechanism
sasl.mechanism.inter.broker.protocol=$mechanism
listener.name.internal.scram-sha-512.sasl.jaas.config=$scram required username="ops" password="$ops_password";
listener.name.host.scram-sha-512.sasl.jaas.config=$scram required username="ops" password="$ops_password";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain required username="controller" password="$controller_password" user_controller="$controller_password";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ops;User:controller
log.dirs=$KAFKA_LOG_DIRS
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
auto.create.topics.enable=false
EOF

# What the healthcheck and the operators inside the container connect as.
cat >"$config_dir/ops-client.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$mechanism
sasl.jaas.config=$scram required username="ops" password="$ops_password";
EOF

if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
    scram_arguments=()
    for principal in $principals; do
        scram_arguments+=(--add-scram "$mechanism=[name=$principal,password=$(password_of "$principal")]")
    done
    # The passwords are on this command line for the tool's few seconds: only this
    # container's processes can read it.
    "$kafka_home"/bin/kafka-storage.sh format -t "$CLUSTER_ID" -c "$properties" "${scram_arguments[@]}"
fi

exec "$kafka_home"/bin/kafka-server-start.sh "$properties"

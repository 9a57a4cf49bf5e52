#!/bin/sh
# Makes the broker ready for the platform: every topic of contracts.topics.ALL_TOPICS (each
# contract topic and its `.dlq` twin) with its partitions and settings, and every ACL of
# the contract's table of principals (contracts.principals, ops.kafka_access). The broker
# denies whatever no ACL allows and creates no topic on its own, so these lines are the only
# way a topic or a permission comes to exist there. docker-compose.yml runs this once,
# before the services start, as the `ops` principal; tests/test_docker_compose.py checks
# the lines against the code.
set -eu

kafka_bin="${KAFKA_HOME:-/opt/kafka}/bin"
bootstrap="${KAFKA_BOOTSTRAP_SERVERS:?names the broker, e.g. kafka:29092}"
: "${KAFKA_OPS_PASSWORD:?is the password of the ops principal}"

# The admin tools connect as `ops`; the file is this container's own, readable by it alone.
client_config="$(mktemp)"
chmod 600 "$client_config"
cat >"$client_config" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="ops" password="$KAFKA_OPS_PASSWORD";
EOF

# create_topic NAME PARTITIONS [SETTING=VALUE ...]; a topic that exists is left as it is,
# so running this again (every `docker compose up`) changes nothing.
create_topic() {
    name="$1"
    partitions="$2"
    shift 2
    # Each SETTING=VALUE becomes `--config SETTING=VALUE`, still quoted, in "$@".
    for setting; do
        set -- "$@" --config "$setting"
        shift
    done
    "$kafka_bin"/kafka-topics.sh --bootstrap-server "$bootstrap" \
        --command-config "$client_config" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor 1 "$@"
}

# allow PRINCIPAL OPERATION RESOURCE-TYPE PATTERN-TYPE NAME...: one binding per name (one
# tool start for them all); adding a binding the broker already holds changes nothing.
allow() {
    principal="$1"
    operation="$2"
    resource_type="$3"
    pattern_type="$4"
    shift 4
    for name; do
        set -- "$@" "--$resource_type" "$name"
        shift
    done
    "$kafka_bin"/kafka-acls.sh --bootstrap-server "$bootstrap" \
        --command-config "$client_config" --add --allow-principal "User:$principal" \
        --operation "$operation" --resource-pattern-type "$pattern_type" "$@"
}

create_topic booking.sessions 6 retention.ms=-1
create_topic booking.sessions.dlq 6 retention.ms=-1 max.message.bytes=2097152
create_topic workouts.workout-sessions 6 retention.ms=-1
create_topic workouts.workout-sessions.dlq 6 retention.ms=-1 max.message.bytes=2097152
create_topic commerce.packages 6 retention.ms=-1
create_topic commerce.packages.dlq 6 retention.ms=-1 max.message.bytes=2097152
create_topic credits.ledger 6 retention.ms=-1
create_topic credits.ledger.dlq 6 retention.ms=-1 max.message.bytes=2097152
create_topic analytics.session-usage 6 cleanup.policy=compact
create_topic analytics.session-usage.dlq 6 retention.ms=-1 max.message.bytes=2097152

allow booking Write topic literal booking.sessions booking.sessions.dlq credits.ledger.dlq
allow booking Read topic literal booking.sessions credits.ledger
allow booking Read group prefixed booking
allow workouts Write topic literal workouts.workout-sessions booking.sessions.dlq workouts.workout-sessions.dlq
allow workouts Read topic literal booking.sessions workouts.workout-sessions
allow workouts Read group prefixed workouts
allow credits Write topic literal credits.ledger booking.sessions.dlq workouts.workout-sessions.dlq commerce.packages.dlq credits.ledger.dlq
allow credits Read topic literal booking.sessions workouts.workout-sessions commerce.packages credits.ledger
allow credits Read group prefixed credits
allow analytics Write topic literal analytics.session-usage workouts.workout-sessions.dlq credits.ledger.dlq booking.sessions.dlq
allow analytics Read topic literal workouts.workout-sessions credits.ledger booking.sessions
allow analytics Read group prefixed analytics
allow platform Write topic literal booking.sessions
allow store Write topic literal commerce.packages
allow subscriber Read topic literal analytics.session-usage
allow subscriber Read group prefixed subscriber

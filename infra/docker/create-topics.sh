#!/bin/sh
# Creates every topic of contracts.topics.ALL_TOPICS (each contract topic and its `.dlq`
# twin) with its partitions and settings. docker-compose.yml runs it once, before the
# services start; the broker does not create topics on its own, so these lines are the only
# way topics come to exist there. tests/test_docker_compose.py checks them against the code.
set -eu

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:?names the broker, e.g. kafka:29092}"

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
    /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor 1 "$@"
}

create_topic booking.sessions 6 retention.ms=-1
create_topic booking.sessions.dlq 6 retention.ms=-1
create_topic workouts.workout-sessions 6 retention.ms=-1
create_topic workouts.workout-sessions.dlq 6 retention.ms=-1
create_topic commerce.packages 6 retention.ms=-1
create_topic commerce.packages.dlq 6 retention.ms=-1
create_topic credits.ledger 6 retention.ms=-1
create_topic credits.ledger.dlq 6 retention.ms=-1
create_topic analytics.session-usage 6 cleanup.policy=compact
create_topic analytics.session-usage.dlq 6 retention.ms=-1

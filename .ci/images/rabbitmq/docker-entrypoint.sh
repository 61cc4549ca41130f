#!/bin/sh
# The official image's contract for the parts compose uses (see the
# Dockerfile's header).
set -eu

if [ "$1" = rabbitmq-server ]; then
    # Read by the node only when it first starts on an empty data directory,
    # as in the official image.
    conf=/etc/rabbitmq/conf.d/05-default-user.conf
    : >"$conf"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        printf 'default_user = %s\n' "$RABBITMQ_DEFAULT_USER" >>"$conf"
    fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then
        printf 'default_pass = %s\n' "$RABBITMQ_DEFAULT_PASS" >>"$conf"
    fi
    # The node itself, not Debian's wrapper script, as PID 1: it gets SIGTERM.
    shift
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"

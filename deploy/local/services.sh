#!/usr/bin/env bash
# Makes sure the local PostgreSQL, Redis and RabbitMQ answer, starting the installed servers
# that are stopped. Exits non-zero, naming the service, if one still cannot be reached.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  for _ in $(seq 1 "$3"); do up "$2" && return 0; sleep 1; done
  echo "services: $1 is not reachable on 127.0.0.1:$2" >&2
  return 1
}

if ! up 5432; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! up 6379; then
  echo "services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! up 5672; then
  echo "services: starting RabbitMQ" >&2
  rabbitmq-server -detached || true
fi

ok=0
wait_for PostgreSQL 5432 30 || ok=1
wait_for Redis 6379 15 || ok=1
wait_for RabbitMQ 5672 90 || ok=1
exit $ok

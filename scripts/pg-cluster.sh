#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for kernel-lock's PostgreSQL engine tests
# and benchmarks, made from the machine's own PostgreSQL server binaries.
#
#   scripts/pg-cluster.sh start [DIR]     initdb + start; prints the env file
#   scripts/pg-cluster.sh env [DIR]       print the `export` lines (eval them)
#   scripts/pg-cluster.sh restart [DIR] [fast|immediate]
#   scripts/pg-cluster.sh stop [DIR]      stop the server and delete DIR
#
# DIR defaults to $KERNEL_LOCK_PG_DIR or /tmp/klpg-cluster. The server runs
# as a normal user (PostgreSQL refuses root): as the invoking user when that
# is not root, else as the system user "klpg", created when missing. It
# listens on a Unix socket in DIR/socket and on a TCP port (first free one
# from 54390, or $KERNEL_LOCK_PG_PORT) on $KERNEL_LOCK_PG_LISTEN (default
# 127.0.0.1); with $KERNEL_LOCK_PG_NETNS it runs inside that network
# namespace. Authentication is "trust": a cluster for tests, nothing else.
#
# The tests read these variables (the env file sets them):
#   KERNEL_LOCK_PG_URL         application role over TCP (the engine under test)
#   KERNEL_LOCK_PG_SOCKET_URL  application role over the Unix socket
#   KERNEL_LOCK_PG_ADMIN_URL   superuser over the Unix socket (pg_locks, terminate)
#   KERNEL_LOCK_PG_BIN, KERNEL_LOCK_PG_DIR, KERNEL_LOCK_PG_OS_USER, KERNEL_LOCK_PG_PORT
#
# Binaries: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin;
# when neither exists and we are root, `apt-get install -y postgresql`. As
# root, `start` also installs PgBouncer when it is missing (the pooler test
# puts one in front of the cluster); a normal user's tests skip that one.
set -euo pipefail

command=${1:-}
dir=${2:-${KERNEL_LOCK_PG_DIR:-/tmp/klpg-cluster}}
app_role=klpg_app
database=klpg_test

die() {
  echo "pg-cluster: $*" >&2
  exit 1
}

find_bin() {
  local candidate
  if command -v pg_config >/dev/null 2>&1; then
    candidate=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "${candidate}/initdb" ] && [ -x "${candidate}/postgres" ]; then
      echo "$candidate"
      return
    fi
  fi
  # Debian puts the server binaries beside, not in, pg_config's bindir.
  candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$candidate" ] && [ -x "${candidate}/initdb" ]; then
    echo "$candidate"
    return
  fi
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  return 1
}

ensure_bin() {
  local bin
  if bin=$(find_bin); then
    echo "$bin"
    return
  fi
  [ "$(id -u)" = 0 ] || die "no PostgreSQL server binaries found (pg_config, /usr/lib/postgresql/*/bin); install the postgresql package"
  if command -v apt-get >/dev/null 2>&1; then
    echo "pg-cluster: installing postgresql (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } ||
      die "apt-get install postgresql failed"
  elif command -v apk >/dev/null 2>&1; then
    echo "pg-cluster: installing postgresql (apk)" >&2
    apk add --no-cache -q postgresql >&2 || die "apk add postgresql failed"
  else
    die "no PostgreSQL server binaries and no apt-get or apk to install them"
  fi
  find_bin || die "postgresql installed but no server binaries found"
}

# PgBouncer, for the pooler test: installed as root when missing; never fatal.
ensure_bouncer() {
  [ "$(id -u)" = 0 ] || return 0
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || [ -x /usr/bin/pgbouncer ] && return 0
  if command -v apt-get >/dev/null 2>&1; then
    echo "pg-cluster: installing pgbouncer (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >&2; } ||
      echo "pg-cluster: could not install pgbouncer (the pooler test will fail)" >&2
  elif command -v apk >/dev/null 2>&1; then
    apk add --no-cache -q pgbouncer >&2 || echo "pg-cluster: could not install pgbouncer" >&2
  fi
  return 0
}

# The OS user the server runs as.
server_user() {
  if [ "$(id -u)" != 0 ]; then
    id -un
    return
  fi
  if ! id -u klpg >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin klpg >&2
    else
      adduser -S -D -H klpg >&2 # busybox
    fi || die "cannot create the system user klpg"
  fi
  echo klpg
}

as_server_user() {
  local user=$1
  shift
  local prefix=()
  if [ -n "${KERNEL_LOCK_PG_NETNS:-}" ]; then prefix=(ip netns exec "$KERNEL_LOCK_PG_NETNS"); fi
  if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null 2>&1; then
    "${prefix[@]}" runuser -u "$user" -- "$@"
  elif [ "$(id -u)" = 0 ]; then
    "${prefix[@]}" su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
  else
    "${prefix[@]}" "$@"
  fi
}

free_port() {
  local port=${KERNEL_LOCK_PG_PORT:-}
  if [ -n "$port" ]; then
    echo "$port"
    return
  fi
  node -e '
    const net = require("node:net");
    const tryPort = (p) => {
      const s = net.createServer();
      s.once("error", () => tryPort(p + 1));
      s.listen(p, "127.0.0.1", () => s.close(() => console.log(p)));
    };
    tryPort(54390);
  '
}

start() {
  [ ! -e "${dir}/env" ] || die "${dir} already holds a cluster (scripts/pg-cluster.sh stop ${dir} first)"
  local bin user port listen
  bin=$(ensure_bin)
  ensure_bouncer
  user=$(server_user)
  port=$(free_port)
  listen=${KERNEL_LOCK_PG_LISTEN:-127.0.0.1}
  mkdir -p "${dir}/socket"
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown -R "$user" "$dir"; fi
  as_server_user "$user" "${bin}/initdb" -D "${dir}/data" -U "$user" --auth=trust --no-sync \
    --no-instructions -E UTF8 --locale=C >"${dir}/initdb.log" 2>&1 ||
    { cat "${dir}/initdb.log" >&2; die "initdb failed"; }
  if [ "$listen" != 127.0.0.1 ] && [ "$listen" != localhost ]; then
    # Listening beyond loopback: only ever inside a test's own network
    # namespace (KERNEL_LOCK_PG_NETNS), whose peers are the test's hosts.
    echo 'host all all all trust' >>"${dir}/data/pg_hba.conf"
  fi
  # max_connections: every contended wait holds a session of its own.
  as_server_user "$user" "${bin}/pg_ctl" -D "${dir}/data" -l "${dir}/server.log" -w -t 30 \
    -o "-c listen_addresses='${listen}' -p ${port} -k ${dir}/socket -c max_connections=300 -c shared_buffers=32MB" \
    start >/dev/null || { tail -n 20 "${dir}/server.log" >&2; die "the server did not start"; }
  as_server_user "$user" "${bin}/psql" -h "${dir}/socket" -p "$port" -U "$user" -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE ${app_role} LOGIN" -c "CREATE DATABASE ${database} OWNER ${app_role}" >/dev/null ||
    die "cannot create the test role and database"
  local socket_host
  socket_host=$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "${dir}/socket")
  local tcp_host=$listen
  if [ "$tcp_host" = '*' ] || [ "$tcp_host" = '0.0.0.0' ]; then tcp_host=127.0.0.1; fi
  cat >"${dir}/env" <<EOF
export KERNEL_LOCK_PG_URL='postgresql://${app_role}@${tcp_host}:${port}/${database}'
export KERNEL_LOCK_PG_SOCKET_URL='postgresql://${app_role}@${socket_host}:${port}/${database}'
export KERNEL_LOCK_PG_ADMIN_URL='postgresql://${user}@${socket_host}:${port}/${database}'
export KERNEL_LOCK_PG_BIN='${bin}'
export KERNEL_LOCK_PG_DIR='${dir}'
export KERNEL_LOCK_PG_OS_USER='${user}'
export KERNEL_LOCK_PG_PORT='${port}'
EOF
  echo "pg-cluster: PostgreSQL $("${bin}/postgres" --version | awk '{print $3}') running as ${user} on ${listen}:${port} and ${dir}/socket" >&2
  echo "${dir}/env"
}

read_env() {
  [ -f "${dir}/env" ] || die "no cluster in ${dir} (scripts/pg-cluster.sh start ${dir})"
  # shellcheck disable=SC1091
  . "${dir}/env"
}

stop() {
  if [ -f "${dir}/env" ]; then
    read_env
    as_server_user "$KERNEL_LOCK_PG_OS_USER" "${KERNEL_LOCK_PG_BIN}/pg_ctl" -D "${dir}/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  # Only ever a directory this script made: it holds data/ and socket/.
  if [ -d "${dir}/data" ] || [ -d "${dir}/socket" ]; then rm -rf "$dir"; fi
}

restart() {
  read_env
  local mode=${1:-fast}
  as_server_user "$KERNEL_LOCK_PG_OS_USER" "${KERNEL_LOCK_PG_BIN}/pg_ctl" -D "${dir}/data" -l "${dir}/server.log" \
    -m "$mode" -w -t 30 restart >/dev/null || die "restart failed"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  env)
    read_env
    cat "${dir}/env"
    ;;
  restart) restart "${3:-fast}" ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

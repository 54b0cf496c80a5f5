#!/bin/sh
# Writes the secrets compose.yaml mounts, once, into deploy/compose/secrets/ (kept out of git): random passwords for
# PostgreSQL and Redis and the connection URLs kycgate reads them from. Existing files are kept; delete the directory
# (and the postgres-data volume) to start over.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"   # the files are mode 0644: the containers' users must read them; the directory keeps others out

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }   # hex: safe inside a URL

write() {   # write NAME VALUE: only if absent
  if [ ! -f "$dir/$1" ]; then
    printf '%s\n' "$2" > "$dir/$1"
    chmod 0644 "$dir/$1"
    echo "wrote $dir/$1"
  fi
}

[ -f "$dir/postgres_password" ] || write postgres_password "$(random)"
[ -f "$dir/redis_password" ] || write redis_password "$(random)"
write kycgate_pg_url "postgres://kycgate:$(cat "$dir/postgres_password")@postgres:5432/kycgate"
write kycgate_redis_url "redis://:$(cat "$dir/redis_password")@redis:6379"

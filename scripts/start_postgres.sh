#!/usr/bin/env bash
# Start Debian's PostgreSQL 15 (installing it if missing) and create the test role and database the
# registry tests use; prints the SQLAlchemy URL. PostgreSQL's tools refuse to run as root, so the
# cluster wrapper and runuser do the work.
set -euo pipefail
ROLE=nichetune
DB=nichetune_test
PASSWORD=nichetune-test
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get install -y -q postgresql >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; } \
    || { echo "error: Debian postgresql could not be installed; the registry tests need it" >&2; exit 1; }
fi
VERSION=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
CLUSTER=$(pg_lsclusters -h | awk 'NR==1 {print $2}')
if [ -z "$VERSION" ]; then
  VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
  CLUSTER=main
  pg_createcluster "$VERSION" "$CLUSTER" >/dev/null
fi
pg_ctlcluster "$VERSION" "$CLUSTER" start >/dev/null 2>&1 || true
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q -p "$PORT" && break
  sleep 1
done
runuser -u postgres -- psql -q -p "$PORT" -tc "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'" | grep -q 1 \
  || runuser -u postgres -- psql -q -p "$PORT" -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
runuser -u postgres -- psql -q -p "$PORT" -tc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1 \
  || runuser -u postgres -- createdb -p "$PORT" -O "$ROLE" "$DB"
echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"

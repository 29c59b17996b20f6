#!/usr/bin/env bash
# Add a migration for a model change: autogenerates a new Alembic revision
# from the difference between the models and a database at head.
#   bash scripts/new-migration.sh "add index on contact.created_at"
# Review the generated file (Alembic cannot see every change), then commit it
# with the model change. tests/test_foundation.py fails while they disagree.
# 0001_initial was generated from the models before the first release; since
# then the schema only moves forward by new revisions (existing databases upgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 \"what changes\"" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python - "$tmp/m.db" "$1" <<'PY'
import sys
from alembic import command
from lanpya.db import alembic_config, upgrade
url = f"sqlite:///{sys.argv[1]}"
upgrade(url)
command.revision(alembic_config(url), message=sys.argv[2], autogenerate=True)
PY
.venv/bin/ruff format -q lanpya/migrations/versions/ || true

#!/usr/bin/env bash
# Before the first release there is one migration, 0001_initial, generated
# from the models. Run this after changing a model; it rewrites 0001.
# (After the first release: use `alembic revision --autogenerate` instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f lanpya/migrations/versions/0001_initial.py
.venv/bin/python - "$tmp/m.db" <<'PY'
import sys
from alembic import command
from lanpya.db import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}")
command.revision(cfg, message="initial", autogenerate=True, rev_id="0001_initial")
PY
mv lanpya/migrations/versions/0001_initial_initial.py lanpya/migrations/versions/0001_initial.py
.venv/bin/ruff format -q lanpya/migrations/versions/0001_initial.py || true
rm -rf "$tmp"
echo "rewrote lanpya/migrations/versions/0001_initial.py"

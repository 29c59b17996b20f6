#!/usr/bin/env bash
# Set up everything Lanpya needs on this machine; safe to run again.
#   .venv       Python >= 3.11: the app (lanpya, webhook, conversations, campaigns)
#   .venv-rasa  Python 3.10:    Rasa 3.6 and the action server (a link into a cache
#               keyed by the hash of bot/requirements.lock, so a fresh clone reuses it)
#   .env        generated keys (first time only)
#   var/        the SQLite database, upgraded to the latest migration
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${LANPYA_CACHE:-$HOME/.cache/lanpya}
mkdir -p "$CACHE"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

find_python() {  # find_python MAJOR.MINOR [exact]
  local want=$1 exact=${2:-} cand v
  local cands=("python$want" python3 python)
  if command -v pyenv >/dev/null 2>&1; then
    cands+=("$(pyenv root)"/versions/"$want"*/bin/python)
  fi
  cands+=("$HOME"/.pyenv/versions/"$want"*/bin/python /usr/bin/python"$want" /usr/local/bin/python"$want")
  for cand in "${cands[@]}"; do
    command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ] || continue
    v=$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    if [ -n "$exact" ]; then [ "$v" = "$want" ] && { command -v "$cand" || echo "$cand"; return 0; }
    else
      "$cand" -c "import sys; sys.exit(0 if sys.version_info[:2] >= tuple(map(int, '$want'.split('.'))) else 1)" 2>/dev/null \
        && { command -v "$cand" || echo "$cand"; return 0; }
    fi
  done
  return 1
}

# --- the app's Python ------------------------------------------------------
PY_APP=$(find_python 3.11) || {
  echo "Lanpya needs Python 3.11 or newer for the app. Install it, e.g.:" >&2
  echo "  apt-get install python3 python3-venv   (Debian 12+)   or   pyenv install 3.11" >&2
  exit 1; }
LOCK_HASH=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.lock-hash 2>/dev/null)" != "$LOCK_HASH" ]; then
  say "app environment (.venv, $($PY_APP --version))"
  [ -x .venv/bin/python ] || "$PY_APP" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  .venv/bin/pip install -q --no-deps -e .
  echo "$LOCK_HASH" > .venv/.lock-hash
fi

# --- the Rasa runtime: Python 3.10, cached by lock hash ----------------------
PY_RASA=$(find_python 3.10 exact) || {
  cat >&2 <<'MSG'
Rasa Open Source 3.6 needs Python 3.10 (it does not run on 3.11+), and none was found
on PATH or in pyenv's versions folder. Get one, then run this again:
  pyenv install 3.10.13            (with pyenv: https://github.com/pyenv/pyenv)
  apt-get install python3.10-venv   (Ubuntu 22.04; deadsnakes PPA elsewhere)
MSG
  exit 1; }
RASA_HASH=$( (cat bot/requirements.lock; "$PY_RASA" --version) | sha256sum | cut -c1-16)
RASA_ENV="$CACHE/venv-rasa-$RASA_HASH"
if [ ! -f "$RASA_ENV/.complete" ]; then
  say "Rasa environment ($("$PY_RASA" --version); about 2.7 GB, a few minutes the first time)"
  rm -rf "$RASA_ENV"
  "$PY_RASA" -m venv "$RASA_ENV"
  "$RASA_ENV/bin/pip" install -q --upgrade pip
  "$RASA_ENV/bin/pip" install -q --no-deps -r bot/requirements.lock
  "$RASA_ENV/bin/pip" check >/dev/null || { "$RASA_ENV/bin/pip" check; exit 1; }
  touch "$RASA_ENV/.complete"
  # keep the cache from filling the disk: only the two newest Rasa environments
  ls -1dt "$CACHE"/venv-rasa-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
fi
ln -sfn "$RASA_ENV" .venv-rasa

# --- test tools: Debian's Chromium for the browser tests ------------------------
if [ "${1:-}" = "--test-tools" ]; then
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian's chromium for the browser tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
      echo "browser tests need Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
    fi
  fi
  exit 0
fi

# --- configuration and database ---------------------------------------------
[ -f .env ] || .venv/bin/lanpya init
.venv/bin/lanpya db upgrade
say "set up: .venv ($(.venv/bin/python --version)), .venv-rasa ($(.venv-rasa/bin/python --version))"

# Shared by scripts/demo and scripts/test: a Python 3.11+ virtual environment in .venv.
# shellcheck shell=bash

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  echo "installing Debian packages: $*" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
    || { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Firewarden needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))" >&2
  return 1
}

ensure_venv() {  # ensure_venv EXTRAS: creates .venv and installs the project into it
  local extras="${1:-}" python
  if [ ! -x .venv/bin/python ]; then
    python=$(find_python)
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  # pip's output goes to a log, shown only when the install fails.
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -e ".${extras}"; } >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "installing Firewarden failed (log above, also in .venv/pip.log)" >&2
    return 1
  fi
}

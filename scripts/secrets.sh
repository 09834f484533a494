#!/usr/bin/env bash
# Generated local secrets: one file per secret in $MLOPS_SECRETS_DIR (default <project>/.secrets,
# mode 0700, git-ignored), each file mode 0600, 32 hex characters, created on first use.
# The one home of that contract: scripts/env.sh and scripts/db.sh source this file, Python calls it.
#   scripts/secrets.sh NAME        print the secret NAME (generated when missing)
#   . scripts/secrets.sh; mlops_secret NAME
mlops_secret() {
  local dir="${MLOPS_SECRETS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.secrets}"
  local file="$dir/$1"
  if [ ! -s "$file" ]; then
    (
      umask 077
      mkdir -p "$dir"
      od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$file.$$"
      mv "$file.$$" "$file"
    )
  fi
  chmod 700 "$dir" 2>/dev/null || true
  chmod 600 "$file"
  cat "$file"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# -eq 1 ] || { echo "usage: $0 NAME" >&2; exit 2; }
  mlops_secret "$1"
fi

#!/usr/bin/env bash
# The project's one test command (README, .ci/run): node's built-in runner over every test file.
# Node 20 does not expand globs itself, so the shell does.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(test/**/*.test.ts test/**/*.test.tsx)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# the runner records completed runs in the run history: never into the user's own state dir
if [ -z "${LLEM_STATE_DIR:-}" ]; then
  LLEM_STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/llem-test-state.XXXXXX")"
  export LLEM_STATE_DIR
  trap 'rm -rf "$LLEM_STATE_DIR"' EXIT
fi
node --import tsx --test --test-reporter=spec --test-timeout=600000 "$@" "${files[@]}"

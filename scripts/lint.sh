#!/usr/bin/env bash
# The repository's style, checked (CI runs it before the tests): Biome for TypeScript/JavaScript/CSS
# (biome.json: format + lint, 120 columns) and clang-format for the addon's C++ (native/.clang-format).
# `bash scripts/lint.sh --fix` rewrites the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
native=(native/src/*.cc native/src/*.h)
if [ "${1:-}" = --fix ]; then
  npx biome check --write .
  clang-format -i --style=file:native/.clang-format "${native[@]}"
else
  npx biome check .
  clang-format --dry-run -Werror --style=file:native/.clang-format "${native[@]}"
fi

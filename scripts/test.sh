#!/usr/bin/env bash
# Set-up (scripts/setup.sh), the style check (scripts/lint.sh), then the whole test suite with
# node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
node --test --test-concurrency=1 dist/test/

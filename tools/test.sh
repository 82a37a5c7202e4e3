#!/usr/bin/env bash
# Every test: the Rust workspace, then the Python package (wheel built into a cached,
# git-ignored venv by tools/python-tests.sh). Needs Rust, g++ and python3 (3.9+) with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== rust: cargo test --workspace"
cargo test --workspace
bash tools/python-tests.sh

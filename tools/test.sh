#!/usr/bin/env bash
# Every test: the crate's layering, the Rust workspace, then the Python package (wheel built into a cached,
# git-ignored venv by tools/python-tests.sh). Needs Rust, g++ and python3 (3.9+) with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== layering: no file imports one from a layer above it (tools/layers.txt)"
python3 tools/import_graph.py --layers tools/layers.txt
echo "== rust: cargo test --workspace"
cargo test --workspace
bash tools/python-tests.sh

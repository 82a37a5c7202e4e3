#!/usr/bin/env bash
# Builds the circot wheel into a cached, git-ignored venv (.venv) and runs the Python tests.
# The venv is made from python/requirements-test.txt on first use (torch's wheels are ~2.6 GB,
# a few minutes) and rebuilt when that file changes. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp=$venv/.requirements-test.txt
if ! cmp -s python/requirements-test.txt "$stamp" 2>/dev/null; then
    echo "== python: creating $venv from python/requirements-test.txt"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r python/requirements-test.txt
    cp python/requirements-test.txt "$stamp"
fi
echo "== python: building the wheel (maturin, release) and installing it into $venv"
rm -rf target/wheels
VIRTUAL_ENV=$PWD/$venv "$venv/bin/maturin" build --release --quiet -m python/Cargo.toml -o target/wheels \
    --interpreter "$venv/bin/python"
"$venv/bin/pip" install --quiet --force-reinstall --no-deps target/wheels/circot-*.whl
echo "== python: pytest"
# Run from python/tests so that `import circot` is the installed wheel, not the source folder.
cd python/tests
exec "../../$venv/bin/python" -m pytest -q "$@"

"""The package imports with NumPy alone and names its version."""

import circot


def test_version_matches_crate() -> None:
    assert circot.__version__ == "0.1.0"

"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import default_data


@pytest.fixture
def base_data() -> dict[str, Any]:
    """A fresh copy of the bundled default scenario as a dict."""
    return default_data()

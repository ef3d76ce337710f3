"""Shared fixtures. Hypothesis profiles: "ci" (the default, thorough) and "fast" (FAST=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=15, deadline=None)
settings.load_profile("fast" if os.environ.get("FAST") else "ci")

#: The shared test data of the project (official CI-SIS and FHIR examples).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test may touch the developer's own ~/.config/monespace key file."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("MONESPACE_MASTER_KEY", raising=False)
    monkeypatch.delenv("MONESPACE_PREVIOUS_MASTER_KEYS", raising=False)
    monkeypatch.delenv("MONESPACE_KEY_FILE", raising=False)

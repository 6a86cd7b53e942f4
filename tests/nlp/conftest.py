"""Fixtures for the NLP tests: one classifier (and one jieba load) per session, the dev data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import Classifier

# tests/nlp/conftest.py → the repository's parent holds shared/data (e.g. /work/shared/data).
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.load()


def data_file(name: str) -> Path:
    """A development data file, or skip the test with the reason."""
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"development data {name} not found in {DATA_DIR}")
    return path

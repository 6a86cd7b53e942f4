"""Fixtures for the NLP tests: one classifier (and one jieba load) per session, the dev data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import Classifier
from tests.conftest import OWN_DATA, shared_data


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.load()


def data_file(name: str) -> Path:
    """A development data file: ours (tests/data) or the shared one (../shared/data; a failure under CI
    when it is missing)."""
    own = OWN_DATA / name
    return own if own.is_file() else shared_data(name)

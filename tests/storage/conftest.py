"""Every storage test body runs against a local folder and a real S3 endpoint on loopback.

The S3 fixtures (``s3_endpoint``, ``s3_bucket``) live in the top-level ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest

from odist.storage.objectstore import open_store


@pytest.fixture(params=["local", "s3"])
def run_uri(request, tmp_path):
    """A fresh run root: a local folder, or a prefix in a fresh bucket on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "run")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/runs/r1"


@pytest.fixture
def store(run_uri):
    return open_store(run_uri)

"""``odist synth``'s archive on local disk and the same files in a bucket of the loopback S3 server."""

from __future__ import annotations

from pathlib import Path

from odist.cli import main
from odist.storage.objectstore import open_store


def synth_in_bucket(folder: Path, bucket: str, scenarios: list[str], frames: int, width: int,
                    height: int) -> tuple[Path, str]:
    """Write the archive under ``folder / "archive"`` and upload it to ``s3://BUCKET/archive``; both places."""
    import boto3

    local = folder / "archive"
    assert main(["synth", str(local), "--scenarios", *scenarios, "--cameras", "1", "--frames", str(frames),
                 "--width", str(width), "--height", str(height)]) == 0
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/archive")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        store.put(path.relative_to(local).as_posix(), path.read_bytes())
    return local, f"s3://{bucket}/archive"

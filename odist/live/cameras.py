"""The camera list of ``odist live``: a YAML list of cameras, each with ``id`` and ``url``.

```yaml
- id: lobby
  url: rtsp://10.0.0.12/stream1
- id: gate
  url: udp://0.0.0.0:5000
  fps: 5                              # optional: target processing fps of this camera
  overrides: ["distill.max_updates=4"]  # optional: section.key=value config overrides
- id: cam-17
  url: rtsp://cam-17/stream
  credentials: env:CAM17_AUTH         # optional: USER:PASSWORD from an environment variable (or file:PATH)
```

Credentials are read where the camera runs, just before it connects, and never shown or stored: every
URL odist prints, logs or writes has its password masked (``rtsp://admin:***@cam-17/stream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from odist.config import load_config
from odist.config_parse import parse_problem, read_text
from odist.errors import ConfigError, StorageError
from odist.redact import read_credentials, redact, remember_url, with_credentials
from odist.storage.layout import check_stream_id
from odist.video.live import is_live_url

CAMERA_KEYS = {"id", "url", "fps", "overrides", "credentials"}


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its id (the stream id of its results), URL, target fps and config overrides."""

    id: str
    url: str
    fps: float | None = None
    overrides: tuple[str, ...] = ()
    credentials: str | None = None  # env:NAME or file:PATH holding USER:PASSWORD

    @property
    def stream_id(self) -> str:
        return self.id

    @property
    def uri(self) -> str:
        return self.url

    @property
    def shown_url(self) -> str:
        """The URL as it may be shown and stored: its password masked."""
        return redact(self.url)

    def connect_url(self) -> str:
        """The URL to open: with the ``credentials`` read now (a ``ConfigError`` when they cannot be)."""
        if self.credentials is None:
            return self.url
        return with_credentials(self.url, read_credentials(self.credentials, f"camera {self.id}"))


def load_cameras(path: str | Path) -> list[CameraSpec]:
    """Read and check ``path``; the first problem is a ``ConfigError`` naming the file, the entry and the fix."""
    cameras, problems = read_cameras(path)
    if problems:
        raise problems[0]
    return cameras


def read_cameras(path: str | Path) -> tuple[list[CameraSpec], list[ConfigError]]:
    """The valid cameras of ``path`` and one error per invalid entry (so the valid ones can run).

    An unreadable file, or one that is not a non-empty list, raises ``ConfigError``.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"camera list {path} does not exist", "pass the path of a CAMERAS.yaml")
    text = read_text(path, "camera list", "save it as UTF-8 YAML")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"camera list {path} is not valid YAML: {parse_problem(exc)}",
                          "fix the YAML (a list of entries with id and url)") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"camera list {path} must be a non-empty YAML list",
                          "write one entry per camera: - id: NAME\n  url: rtsp://...")
    cameras: list[CameraSpec] = []
    problems: list[ConfigError] = []
    for n, entry in enumerate(data):
        where = f"{path} entry {n + 1}"
        try:
            camera = _camera(entry, where)
        except ConfigError as exc:
            problems.append(exc)
            continue
        if any(c.id == camera.id for c in cameras):
            problems.append(ConfigError(f"{where}: id {camera.id!r} is used twice", "give each camera its own id"))
            continue
        cameras.append(camera)
    return cameras, problems


def _camera(entry: Any, where: str) -> CameraSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a mapping", "write each camera as id: ... and url: ...")
    unknown = sorted(set(entry) - CAMERA_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}", f"use only {sorted(CAMERA_KEYS)}")
    for key in ("id", "url"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(f"{where} has no {key}", f"give every camera a non-empty {key}")
    try:
        camera_id = check_stream_id(entry["id"].strip())
    except StorageError as exc:
        raise ConfigError(f"{where}: {exc.what}", exc.fix) from None
    url = entry["url"].strip()
    remember_url(url)
    if not is_live_url(url):
        raise ConfigError(f"{where}: {redact(url)!r} is not a live URL",
                          "use rtsp://, http(s)://, udp://, tcp://, srt:// or device:FORMAT:PATH "
                          "(files go through `odist run`)")
    fps = entry.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0):
        raise ConfigError(f"{where}: fps {fps!r} is not a positive number", "write e.g. fps: 10")
    overrides = entry.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{where}: overrides must be a list of strings", 'write e.g. ["distill.max_updates=4"]')
    try:
        load_config(overrides=list(overrides), environ={})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.what}", exc.fix) from None
    credentials = _credentials(entry.get("credentials"), url, where)
    return CameraSpec(camera_id, url, None if fps is None else float(fps), tuple(overrides), credentials)


def _credentials(value: Any, url: str, where: str) -> str | None:
    """A camera's ``credentials`` entry, checked for form (it is read only where the camera runs)."""
    if value is None:
        return None
    kind, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if kind not in ("env", "file") or not sep or not name.strip():
        raise ConfigError(f"{where}: credentials must be env:NAME or file:PATH",
                          "write e.g. credentials: env:CAM17_AUTH (the variable holds USER:PASSWORD)")
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        raise ConfigError(f"{where}: {redact(url)} carries credentials and names credentials too",
                          "keep the password out of the URL and give it only through credentials")
    return f"{kind}:{name.strip()}"

"""Streams to distill: a manifest of streams, or a prefix or glob of video files, as ``StreamSpec`` rows.

``load_streams(source)`` accepts

- a manifest file, local or ``s3://``: JSONL (``.jsonl``/``.ndjson``, one JSON object per line), CSV
  (``.csv``, with a header row) or Parquet (``.parquet``), with the keys ``uri`` (required),
  ``stream_id``, ``labels``, ``overrides`` (a list of ``section.key=value`` strings; in CSV one string
  separated by ``;``), ``init`` (a checkpoint the stream's student starts from, over ``--init``) and
  ``group`` (a site or camera group: ``--warm-start fleet`` prefers a finished student of the same group).
  A relative ``uri``, ``labels`` or ``init`` is resolved against the manifest's folder or S3 prefix, so
  the specs mean the same thing on every worker;
- a local folder (every video file below it, recursively), a local glob (``videos/*.mp4``) or a video
  file; an ``s3://bucket/prefix/`` (every video object below it); or one ``synthetic:SCENARIO``.

Every problem is an ``InputError`` naming the manifest and the row (1-based line for JSONL and CSV,
1-based row for Parquet), or the file, and how to fix it.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import json
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from odist.config import load_config
from odist.errors import ConfigError, InputError, StorageError
from odist.storage.layout import check_stream_id
from odist.storage.location import REPLAY, SYNTHETIC, URL_PATTERN, clean_stream_id, stream_name
from odist.storage.objectstore import open_store
from odist.video.synthetic.scenarios import parse_synthetic_spec

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".ts", ".m4v", ".mpg", ".mpeg")
MANIFEST_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
KEYS = ("uri", "stream_id", "labels", "overrides", "init", "group")
_URL = URL_PATTERN
_GLOB_MAGIC = re.compile(r"[*?\[]")
_URI_FIX = "use a local path, file://PATH, s3://BUCKET/KEY, https://HOST/PATH or synthetic:SCENARIO"

Row = tuple[str, Mapping[str, Any]]  # (where, for errors: "MANIFEST line N"; the raw record)


@dataclass(frozen=True)
class StreamSpec:
    """One stream to distill: its video, its id in the run, its replay labels, its config overrides, the
    checkpoint its student starts from (and what chose it: ``manifest`` or ``fleet``) and its group."""

    uri: str
    stream_id: str
    labels: str | None = None
    overrides: tuple[str, ...] = ()
    init: str | None = None
    init_from: str | None = None
    group: str | None = None

    @property
    def teacher(self) -> str | None:
        """The ``--teacher`` value that replays this stream's labels, or None when it has none."""
        return None if self.labels is None else REPLAY + self.labels


def load_streams(source: str) -> list[StreamSpec]:
    """The streams a manifest file, a prefix, a glob or a ``synthetic:SCENARIO`` names (see the module doc)."""
    source = str(source)
    if _suffix(source) in MANIFEST_FORMATS:
        return _from_manifest(source)
    if source.startswith(SYNTHETIC):
        return [_spec({"uri": source}, source, base="")]
    if _URL.match(source):
        return _from_store(source)
    if Path(source).expanduser().is_dir():
        return _from_store(str(Path(source).expanduser()))
    return _from_glob(source)


# -- manifests -----------------------------------------------------------------------------------


def _from_manifest(source: str) -> list[StreamSpec]:
    """Read, parse and validate a manifest file."""
    parent, name = _split_location(source)
    store = open_store(parent)
    rows = _PARSERS[MANIFEST_FORMATS[_suffix(source)]](store.get(name), source)
    specs = [_spec(record, where, base=store.uri) for where, record in rows]
    return _checked(specs, [where for where, _ in rows], source)


def _split_location(source: str) -> tuple[str, str]:
    """``(parent location, file name)`` of a manifest path or URI."""
    if _URL.match(source):
        parent, _, name = source.rpartition("/")
        return parent, name
    path = Path(source).expanduser()
    return str(path.parent), path.name


def _suffix(source: str) -> str:
    return PurePosixPath(source.rstrip("/")).suffix.lower()


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"manifest {source} is not UTF-8 text", "save it as UTF-8") from None


def _jsonl_rows(data: bytes, source: str) -> list[Row]:
    """One JSON object per non-blank line."""
    rows = []
    for number, line in enumerate(_decode(data, source).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where} is not valid JSON ({exc.msg})", "write one JSON object per line") from None
        if not isinstance(record, dict):
            raise InputError(f"{where} is not a JSON object", 'write e.g. {"uri": "videos/cam1.mp4"}')
        rows.append((where, record))
    return rows


def _csv_rows(data: bytes, source: str) -> list[Row]:
    """A header row naming the columns, then one stream per row; ``overrides`` separated by ``;``."""
    reader = csv.reader(io.StringIO(_decode(data, source), newline=""))
    header = [name.strip() for name in next(reader, [])]
    if len(set(header)) != len(header):
        raise InputError(f"{source} line 1 names a column twice", "give every column one header")
    rows, end = [], reader.line_num
    for fields in reader:
        start, end = end + 1, reader.line_num
        if not any(field.strip() for field in fields):
            continue
        where = f"{source} line {start}"
        if len(fields) != len(header):
            raise InputError(f"{where} has {len(fields)} fields but the header has {len(header)}",
                             "write one value per column; quote values that hold commas")
        rows.append((where, {name: _csv_value(name, field) for name, field in zip(header, fields, strict=True)}))
    return rows


def _csv_value(name: str, field: str) -> Any:
    """A CSV cell as the record value: empty -> None; ``overrides`` -> a list split on ``;``."""
    field = field.strip()
    if name == "overrides":
        return [item.strip() for item in field.split(";") if item.strip()]
    return field or None


def _parquet_rows(data: bytes, source: str) -> list[Row]:
    """One stream per row of a Parquet table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"manifest {source} is not a readable Parquet file ({reason})",
                         "write it with pyarrow.parquet.write_table") from None
    return [(f"{source} row {number}", record) for number, record in enumerate(table.to_pylist(), 1)]


_PARSERS: dict[str, Callable[[bytes, str], list[Row]]] = {
    "jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}


# -- one row -------------------------------------------------------------------------------------


def _spec(record: Mapping[str, Any], where: str, base: str) -> StreamSpec:
    """Validate one manifest record; relative locations are resolved against ``base``."""
    unknown = sorted(set(record) - set(KEYS), key=str)
    if unknown:
        raise InputError(f"{where} has unknown key(s) {', '.join(repr(k) for k in unknown)}",
                         f"use only {', '.join(KEYS)}")
    uri = _check_uri(_text(record, "uri", where, required=True), where)
    labels = _text(record, "labels", where)
    if labels is not None:
        labels = _check_labels(labels.removeprefix(REPLAY), where)
    given = _text(record, "stream_id", where)
    init = _text(record, "init", where)
    return StreamSpec(
        uri=_resolve(uri, base), stream_id=_stream_id(given, stream_name(uri), where),
        labels=None if labels is None else _resolve(labels, base), overrides=_overrides(record, where),
        init=None if init is None else _resolve(init, base), init_from=None if init is None else "manifest",
        group=_text(record, "group", where))


def _text(record: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    """A string value; missing, null and blank read as None (an error when ``required``)."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: {key} must be a string, not {type(value).__name__}", f"quote the {key} value")
    value = None if value is None else value.strip() or None
    if value is None and required:
        raise InputError(f"{where} has no {key}", f"give every row a {key} ({_URI_FIX})")
    return value


def _check_uri(uri: str, where: str) -> str:
    """A local path, ``file://``, ``s3://`` or a known ``synthetic:SCENARIO``."""
    if uri.startswith(SYNTHETIC):
        try:
            parse_synthetic_spec(uri)
        except InputError as exc:
            raise InputError(f"{where}: {exc.what}", exc.fix) from None
    elif _URL.match(uri) and not uri.lower().startswith(("file://", "s3://", "http://", "https://")):
        raise InputError(f"{where}: uri {uri!r} has an unsupported scheme", _URI_FIX)
    return uri


def _check_labels(labels: str, where: str) -> str:
    """A label location is a local folder, ``file://`` or ``s3://``."""
    if labels.startswith(SYNTHETIC) or (_URL.match(labels) and not labels.lower().startswith(("file://", "s3://"))):
        raise InputError(f"{where}: labels {labels!r} is not a folder, file:// or s3:// location",
                         "point labels at the folder of {frame_index:06d}.png label maps")
    return labels


def _resolve(location: str, base: str) -> str:
    """``location`` made independent of the working folder: relative paths join ``base``."""
    if location.startswith(SYNTHETIC) or _URL.match(location) or not base:
        return location
    path = os.path.expanduser(location)
    if os.path.isabs(path):
        return path
    if _URL.match(base):
        return f"{base.rstrip('/')}/{posixpath.normpath(location)}"
    return os.path.normpath(os.path.join(base, path))


def _stream_id(given: str | None, name: str, where: str) -> str:
    """The row's own stream id, checked, or one derived from ``name`` and cleaned."""
    try:
        return check_stream_id(clean_stream_id(name) if given is None else given)
    except StorageError as exc:
        if given is not None:
            raise InputError(f"{where}: {exc.what}", exc.fix) from None
        raise InputError(f"{where}: no usable stream id can be derived from {name!r}",
                         "give the row a stream_id, or rename the file") from None


def _overrides(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The row's ``section.key=value`` overrides, each checked as ``odist distill --set`` would."""
    value = record.get("overrides")
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise InputError(f"{where}: overrides must be a list of strings",
                         'write e.g. ["distill.max_updates=4", "teacher.batch_size=2"]')
    overrides = tuple(item.strip() for item in value if item.strip())
    checks = [(item,) for item in overrides] + ([overrides] if len(overrides) > 1 else [])
    for check in checks:
        problem = _config_problem(check)
        if problem is not None:
            what, fix = problem
            shown = check[0] if len(check) == 1 else "; ".join(check)
            raise InputError(f"{where}: override {shown!r} is invalid: {what}",
                             fix or "write section.key=value as `odist distill --set` takes")
    return overrides


@functools.lru_cache(maxsize=4096)
def _config_problem(overrides: tuple[str, ...]) -> tuple[str, str | None] | None:
    """``(what, fix)`` of the config error these overrides cause, or None (cached: rows repeat them)."""
    try:
        load_config(overrides=list(overrides), environ={})
    except ConfigError as exc:
        return exc.what, exc.fix
    return None


def _checked(specs: list[StreamSpec], wheres: list[str], source: str) -> list[StreamSpec]:
    """``specs`` when there is at least one and their stream ids are unique."""
    if not specs:
        raise InputError(f"{source} lists no streams", "add one row per stream, each with a uri")
    first: dict[str, str] = {}
    for spec, where in zip(specs, wheres, strict=True):
        if spec.stream_id in first:
            raise InputError(f"stream id {spec.stream_id!r} of {where} is already used by {first[spec.stream_id]}",
                             "give each stream a distinct stream_id")
        first[spec.stream_id] = where
    return specs


# -- prefixes and globs --------------------------------------------------------------------------


def _is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _from_store(prefix: str) -> list[StreamSpec]:
    """Every video below a local folder, ``file://`` or ``s3://`` prefix."""
    if _GLOB_MAGIC.search(prefix) and _URL.match(prefix):
        raise InputError(f"{prefix} is a glob over a URI; globs work on local paths only",
                         "pass the prefix itself (every video below it is used) or a manifest")
    store = open_store(prefix)
    keys = [key for key in store.list() if _is_video(key)]
    if not keys:
        raise InputError(f"no video files ({' '.join(VIDEO_EXTENSIONS)}) under {prefix}",
                         "check the prefix, or pass a manifest (.jsonl, .csv, .parquet)")
    return _from_keys([(store.url(key), key) for key in keys], prefix)


def _from_glob(pattern: str) -> list[StreamSpec]:
    """Every video file a local glob (or plain file path) matches; ids are relative to its fixed part."""
    expanded = os.path.expanduser(pattern)
    base = os.path.abspath(_glob_base(expanded))
    paths = sorted(os.path.abspath(p) for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
    videos = [p for p in paths if _is_video(p)]
    if not videos:
        raise InputError(f"no video files ({' '.join(VIDEO_EXTENSIONS)}) match {pattern}",
                         "check the path or pattern, or pass a manifest (.jsonl, .csv, .parquet)")
    return _from_keys([(p, Path(os.path.relpath(p, base)).as_posix()) for p in videos], pattern)


def _glob_base(pattern: str) -> str:
    """The folder a pattern's fixed leading part names (a plain file's own folder)."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part)), len(parts) - 1)
    return str(Path(*parts[:fixed])) if fixed else "."


def _from_keys(found: list[tuple[str, str]], source: str) -> list[StreamSpec]:
    """Specs for ``(uri, key relative to the prefix)`` pairs: id = key with ``/`` -> ``-``, no extension."""
    specs = []
    for uri, key in found:
        name = str(PurePosixPath(key).with_suffix("")).replace("/", "-")
        specs.append(StreamSpec(uri=uri, stream_id=_stream_id(None, name, uri)))
    return _checked(specs, [spec.uri for spec in specs], source)

"""Credentials stay secret: a distinctive password in a camera URL, in a camera's ``credentials`` and in a manifest
URI appears in no output, log or stored object of a live run and of an archive run. The live run's cameras
speak HTTP and, where a loopback RTSP server can run (``tests/rtsp_camera.py``), RTSP."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fast_teachers import FAST_MASKRCNN
from rtsp_camera import RtspServer, unavailable

from odist.redact import install, read_credentials, redact, redact_value, remember, with_credentials
from odist.storage.layout import StreamArea, dumps
from odist.storage.objectstore import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PASSWORD = "Zq9hunter2SECRETpw"  # in URLs
ENV_PASSWORD = "Xk7env#ONLY/sec?ret@5%"  # only in the environment, through credentials: env:NAME
SIGNATURE = "f00dfeedSIGNATURE5ec2e7"  # a presigned URL's signature
# Passwords as password generators write them: a character that ends a URL's userinfo, unencoded, in each.
ODD = {c: f"Ab{n}hunter{c}Zq9SECRET{n}" for n, c in enumerate("#/?@%")}


def secrets_of(*passwords: str) -> list[str]:
    """``passwords`` and their pieces either side of any odd character: no piece of one may show either."""
    pieces = {piece for password in passwords for piece in re.split(r"[#/?@%]", password) if len(piece) >= 8}
    return [*passwords, *sorted(pieces)]


# -- the masking itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "shown"), [
    ("rtsp://admin:hunter2@cam-17/stream", "rtsp://admin:***@cam-17/stream"),
    ("camera http://admin:p@ss:w0rd@10.0.0.2:8080/x failed", "camera http://admin:***@10.0.0.2:8080/x failed"),
    ("srt://tok3nonly@host:9000", "srt://***@host:9000"),
    ("'rtsps://u:v@h/p'", "'rtsps://u:***@h/p'"),
    ("https://b.s3.amazonaws.com/v.mp4?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&x=1",
     "https://b.s3.amazonaws.com/v.mp4?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
    ("http://cam/stream?token=abc&user=me", "http://cam/stream?token=***&user=me"),
    ("rtsp://cam-17/stream and a@b.com", "rtsp://cam-17/stream and a@b.com"),
])
def test_redact_masks_passwords_tokens_and_signatures(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize("password", ODD.values(), ids=[f"pw{c}" for c in ODD])
def test_a_password_is_masked_however_it_is_spelled(password):
    for url, shown in [
        (f"http://admin:{password}@127.0.0.1:23456/v.mp4", "http://admin:***@127.0.0.1:23456/v.mp4"),
        (f"error: rtsp://admin:{password}@cam-17 is not a readable video", "error: rtsp://admin:***@cam-17 is not"),
        (f"['srt://{password}@host:9000?mode=caller']", "['srt://***@host:9000?mode=caller']"),
        (f'{{"input": "https://u:{password}@h/a.mp4?token=t0k3n"}}', '{"input": "https://u:***@h/a.mp4?token=***"}'),
    ]:
        assert redact(url).startswith(shown), redact(url)
        assert not any(secret in redact(url) for secret in secrets_of(password))


@pytest.mark.parametrize("password", ODD.values(), ids=[f"pw{c}" for c in ODD])
def test_names_derived_from_a_url_hold_no_piece_of_its_password(password):
    from odist.storage.location import default_stream_id

    for url in (f"http://admin:{password}@cam", f"http://admin:{password}@cam/lobby.mp4"):
        assert not any(secret in default_stream_id(url) for secret in secrets_of(password))
    assert default_stream_id(f"http://admin:{password}@cam/lobby.mp4") == "lobby"
    remember_url_of = f"rtsp://admin:{password}@cam-17/stream"
    from odist.redact import remember_url

    remember_url(remember_url_of)
    assert redact(f"auth {password} refused") == "auth *** refused"


def test_an_at_sign_in_a_path_is_masked_rather_than_risked():
    assert redact("http://host/v@2x.mp4") == "http://***@2x.mp4"  # a password here would look the same
    assert redact("s3://bucket/cam@2/v.mp4") == "s3://bucket/cam@2/v.mp4"  # odist's own locations hold none
    assert redact("file:///data/cam@2/v.mp4") == "file:///data/cam@2/v.mp4"


def test_remembered_secrets_are_masked_anywhere():
    remember("only-in-a-file-42")
    assert redact("auth only-in-a-file-42 refused") == "auth *** refused"
    assert redact_value({"a": ["x only-in-a-file-42"], "b": 1}) == {"a": ["x ***"], "b": 1}


def test_credentials_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM_TEST_AUTH", "admin:pa ss/wd")
    assert read_credentials("env:CAM_TEST_AUTH", "camera x") == "admin:pa ss/wd"
    assert with_credentials("rtsp://cam/s", "admin:pa ss/wd") == "rtsp://admin:pa%20ss%2Fwd@cam/s"
    assert redact(with_credentials("rtsp://cam/s", "admin:pa ss/wd")) == "rtsp://admin:***@cam/s"
    (tmp_path / "auth").write_text("viewer:fromfile99\n")
    assert read_credentials(f"file:{tmp_path / 'auth'}", "camera x") == "viewer:fromfile99"
    from odist.errors import ConfigError

    with pytest.raises(ConfigError, match="env:NOT_SET_ANYWHERE is not set"):
        read_credentials("env:NOT_SET_ANYWHERE", "camera x")


def test_stored_documents_and_errors_are_masked(tmp_path):
    url = f"rtsp://admin:{PASSWORD}@cam-17/stream"
    assert PASSWORD not in dumps({"input": url, "nested": [{"error": f"cannot open {url}"}]}).decode()
    from odist.errors import InputError

    assert PASSWORD not in str(InputError(f"cannot open {url}", f"check {url}"))


def test_log_records_are_masked(caplog):
    import logging

    install()
    url = f"http://admin:{PASSWORD}@cam/stream"
    with caplog.at_level(logging.INFO):
        logging.getLogger("odist.test").info("opening %s", url)
        try:
            raise OSError(f"refused: {url}")
        except OSError:
            logging.getLogger("odist.test").exception("camera %s", url)
    assert "admin:***@cam" in caplog.text and PASSWORD not in caplog.text


# -- whole runs ---------------------------------------------------------------------------------------


def test_distill_shows_and_stores_no_password_however_it_is_spelled(clip_server, tmp_path, capsys):
    from odist.cli import main

    base, archive = clip_server
    host = base.removeprefix("http://")
    outputs, out = [], tmp_path / "run"
    for c, password in ODD.items():
        url = f"http://admin:{password}@{host}/traffic-000/video.mp4"
        rc = main(["distill", url, "--out", str(out), "--stream-id", f"cam{ord(c)}", "--max-frames", "6", "--quiet",
                   "--teacher", f"replay:{archive / 'traffic-000' / 'labels'}",
                   "--set", "student.width=0.25", "--set", "threads=1"])
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
        if c in "#/?":  # FFmpeg cuts such a URL short: the fix says to percent-encode the password
            assert rc == 2 and "http://admin:***@" in captured.err and "percent-encode" in captured.err, captured
        else:
            assert rc == 0, captured
            stream = json.loads((out / "streams" / f"stream_id=cam{ord(c)}" / "stream.json").read_text())
            assert stream["input"] == f"http://admin:***@{host}/traffic-000/video.mp4"
    assert main(["ls", str(out)]) == 0
    outputs.append(capsys.readouterr().out)
    assert not _leaks([out], outputs, secrets_of(*ODD.values()))



def _leaks(roots: list[Path], texts: list[str], secrets: list[str]) -> list[str]:
    """Where any of ``secrets`` appears: in ``texts`` (process outputs) or any file below ``roots``."""
    found = [f"output {n}" for n, text in enumerate(texts) for s in secrets if s in text]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                found += [str(path) for s in secrets if s.encode() in data]
    return found


@pytest.fixture
def ray_tmp():
    """A short Ray temp dir (its socket paths must stay under the AF_UNIX limit), removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="odr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rtsp_camera():
    """A loopback RTSP camera whose password is ``PASSWORD`` (None where no RTSP server can run)."""
    if unavailable():
        yield None
        return
    server = RtspServer(free_port(), "admin", PASSWORD).start()
    yield server
    server.stop()


def test_a_live_run_shows_and_stores_no_password(camera, rtsp_camera, tmp_path, ray_tmp):
    publisher = camera("http")
    host = publisher.url.removeprefix("http://")
    dead = f"127.0.0.1:{free_port()}"
    cameras = tmp_path / "cameras.yaml"
    odd = "Ab9hunter#Zq9/SECRET?9"  # FFmpeg cuts the URL short at its '/': the camera fails, shown masked
    cameras.write_text(
        f"- id: street\n  url: http://admin:{ODD['@']}@{host}/stream\n"
        f"- id: gate\n  url: http://{host}/stream\n  credentials: env:ODIST_TEST_GATE_AUTH\n"
        f"- id: dead\n  url: http://admin:{PASSWORD}@{dead}/stream\n"
        f"- id: broken\n  url: ftp://admin:{ODD['#']}@{dead}/stream\n"
        f"- id: odd\n  url: http://admin:{odd}@{host}/stream\n"
        + (f"- id: door\n  url: {rtsp_camera.url()}\n" if rtsp_camera else ""))
    # With an RTSP server here, one camera speaks RTSP, as IP cameras do; it must deliver frames too.
    live = ("street", "gate", "door") if rtsp_camera else ("street", "gate")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(ray_tmp),
           "ODIST_TEST_GATE_AUTH": f"viewer:{ENV_PASSWORD}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "odist.cli", "live", str(cameras), "--out", str(out), "--teacher", FAST_MASKRCNN,
         "--set", "teacher.weights=random", "--set", "student.width=0.25", "--set", "threads=1",
         "--commit-every", "2", "--status-every", "1", "--read-timeout", "2", "--width", "96", "--height", "64",
         "--student-cpus", "0.25"],  # every camera placed on the local Ray's 2 CPUs
        stdout=(tmp_path / "stdout").open("w"), stderr=(tmp_path / "stderr").open("w"), text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not _live_ready(out / "live_status.json", live):
            assert process.poll() is None, (tmp_path / "stderr").read_text()
            if time.monotonic() > deadline:
                status = (out / "live_status.json").read_text() if (out / "live_status.json").exists() else "none"
                pytest.fail(f"odist live did not get frames from {', '.join(live)} in 240 s; status: {status}")
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert process.returncode == 0, stderr
    assert "admin:***@" in stdout + stderr  # the URLs are shown, masked
    assert "entry 4" in stderr  # the invalid entry was reported
    status = json.loads((out / "live_status.json").read_text())
    assert {c["camera"] for c in status["cameras"]} == {*live, "dead", "odd"}
    assert all(c["state"] == "stopped" and c["frames"] >= 3 for c in status["cameras"] if c["camera"] in live)
    assert "refused" in next(c["error"] for c in status["cameras"] if c["camera"] == "dead")  # it was reached
    assert StreamArea(open_store(str(out)), "gate").last_commit() is not None  # the env credentials worked
    assert list(ray_tmp.rglob("worker-*.err"))  # Ray's own logs are searched too
    assert json.loads((out / "streams" / "stream_id=odd" / "stream.json").read_text())["input"] == \
        f"http://admin:***@{host}/stream"
    assert not _leaks([out, ray_tmp], [stdout, stderr], secrets_of(PASSWORD, ENV_PASSWORD, odd, ODD["@"], ODD["#"]))


def _live_ready(path: Path, live: tuple[str, ...]) -> bool:
    try:
        cameras = {c["camera"]: c for c in json.loads(path.read_text())["cameras"]}
    except (OSError, ValueError, KeyError):
        return False
    return all(cameras.get(name, {}).get("frames", 0) >= 3 for name in live) and bool(
        cameras.get("dead", {}).get("error"))


@pytest.fixture
def clip_server(tmp_path):
    """An archive of one synthetic clip, served over HTTP on loopback: ``(base URL, archive folder)``."""
    from odist.video.archive_maker import make_archive
    from odist.video.synthetic import parse_synthetic_spec

    archive = tmp_path / "archive"
    make_archive(archive, [parse_synthetic_spec("synthetic:traffic")], cameras=1, frames=12, width=96, height=64,
                 seed=0)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the test's own server: no request log on stderr
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(archive)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", archive
    server.shutdown()
    server.server_close()


def test_an_archive_run_shows_and_stores_no_password(clip_server, tmp_path, ray_tmp):
    base, archive = clip_server
    host = base.removeprefix("http://")
    manifest = tmp_path / "manifest.jsonl"
    rows = [{"uri": f"http://admin:{PASSWORD}@{host}/traffic-000/video.mp4", "stream_id": "cam-a",
             "labels": str(archive / "traffic-000" / "labels")},
            {"uri": f"{base}/traffic-000/video.mp4?X-Amz-Credential=AKIA{PASSWORD}&X-Amz-Signature={SIGNATURE}",
             "stream_id": "cam-b", "labels": str(archive / "traffic-000" / "labels")},
            {"uri": f"http://admin:{PASSWORD}@{host}/missing.mp4", "stream_id": "cam-gone"}]
    rows += [{"uri": f"http://admin:{password}@{host}/traffic-000/video.mp4", "stream_id": f"odd-{n}",
              "labels": str(archive / "traffic-000" / "labels")} for n, password in enumerate(ODD.values())]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(ray_tmp)}
    result = subprocess.run(
        [sys.executable, "-m", "odist.cli", "run", str(manifest), "--out", str(out), "--workers", "1",
         "--set", "student.width=0.25", "--set", "threads=1", "--teacher", "oracle", "--retries", "0"],
        capture_output=True, text=True, env=env, timeout=300)
    outputs = [result.stdout, result.stderr]
    ls = subprocess.run([sys.executable, "-m", "odist.cli", "ls", str(out)], capture_output=True, text=True,
                        timeout=120)
    outputs += [ls.stdout, ls.stderr]
    store = open_store(str(out))
    assert StreamArea(store, "cam-a").status()[0] == "done", outputs
    assert StreamArea(store, "cam-b").status()[0] == "done", outputs
    assert StreamArea(store, "cam-gone").status()[0] == "failed", outputs
    assert "admin:***@" in ls.stdout  # the failure names the URL, masked
    odd = {sid: StreamArea(store, sid).status() for sid in (f"odd-{n}" for n in range(len(ODD)))}
    assert [state for state, _ in odd.values()] == ["failed"] * 3 + ["done"] * 2, odd  # '#', '/', '?': cut short
    assert all("http://admin:***@" in detail for state, detail in odd.values() if state == "failed"), odd
    assert list(ray_tmp.rglob("worker-*.err"))  # Ray's own logs are searched too
    assert not _leaks([out, ray_tmp], outputs, [*secrets_of(PASSWORD, *ODD.values()), SIGNATURE])


def test_a_presigned_manifest_uri_gives_a_stream_id_without_its_query(tmp_path):
    from odist.video.manifest import load_streams

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"uri": "https://b.s3.amazonaws.com/cams/lobby.mp4?X-Amz-Signature=a.b.c"}) + "\n")
    (spec,) = load_streams(str(manifest))
    assert spec.stream_id == "lobby" and spec.uri.endswith("X-Amz-Signature=a.b.c")

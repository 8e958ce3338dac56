"""Hostile and malformed inputs, one row each: the command, its exit code and the first words of its message.

Each row once ended in a ``MemoryError``, a raw traceback, a wrong exit code or a silently wrong result; now
each is one line (``odist: error: ...`` on stderr, exit 2) or, for ``odist run``, one failed stream (exit 1).
A regression shows up under the row's name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import alias_bomb, png_declaring

from odist.cli import main

TINY = ["--width", "48", "--height", "32", "--frames", "8", "--segment-frames", "4", "--quiet",
        "--set", "student.width=0.25", "--set", "threads=1", "--set", "distill.max_updates=1"]
STREAM = "streams/stream_id=traffic"


@dataclass(frozen=True)
class Row:
    """``argv(tmp, run)`` builds the command (``run``: a copy of a finished tiny run of ``synthetic:traffic``);
    ``words`` starts its message, ``{tmp}`` standing for the row's folder; ``stdout``: the message is a line
    of the job's output (``odist run`` lists failed streams there) rather than the error line."""

    argv: Callable[[Path, Path], list[str]]
    code: int
    words: str
    stdout: bool = False


def _write(path: Path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def _distill(tmp: Path, *extra: str) -> list[str]:
    return ["distill", "synthetic:traffic", "--out", str(tmp / "new"), *TINY, *extra]


def _onnx_model(tmp: Path, classes: str) -> str:
    """A 1x1-convolution segmenter with four output channels and ``classes`` as its class metadata."""
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["logits"])], "segmenter",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4, "h", "w"])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"classes": classes})
    path = tmp / "model.onnx"
    onnx.save(model, str(path))
    return f"onnx:{path}"


def _live(tmp: Path, cameras: str, *extra: str) -> list[str]:
    weights = _write(tmp / "maskrcnn.pt", b"checked for existence only")
    return ["live", cameras, "--out", str(tmp / "live"), "--set", f"teacher.weights={weights}", *extra]


def _partial(run: Path) -> Path:
    """``run`` with its stream's summary.json gone: 8 frames committed, not finished."""
    (run / STREAM / "summary.json").unlink()
    return run


def _corrupt(run: Path, name: str, data: bytes | str) -> Path:
    """``run`` with its stream's ``name`` overwritten by ``data``."""
    _write(run / STREAM / name, data)
    return run


def _without_masks(run: Path) -> Path:
    for part in (run / STREAM / "masks").iterdir():
        part.unlink()
    return run


LATIN1 = "distill: {lr: 0.1}  # réglé\n".encode("latin-1")
DEEP = "[" * 100_000 + "]" * 100_000

ROWS: dict[str, Row] = {
    # 5. small inputs that exhaust memory
    "config with nested YAML aliases": Row(
        lambda tmp, run: _distill(tmp, "--config", _write(tmp / "bomb.yaml", alias_bomb(5))),
        2, "config file {tmp}/bomb.yaml holds more than 10000 values"),
    "ONNX class id 99999999999": Row(
        lambda tmp, run: _distill(tmp, "--teacher", _onnx_model(tmp, '{0: "background", 99999999999: "person"}')),
        2, "ONNX model {tmp}/model.onnx metadata 'classes' has class id 99999999999, outside 0..65535"),
    # 6. raw tracebacks where one line and exit 2 belong
    "label PNG declaring 60000x60000 pixels": Row(
        lambda tmp, run: _distill(tmp, "--teacher", "replay:" + str(Path(
            _write(tmp / "labels" / "000000.png", png_declaring(60000, 60000))).parent)),
        2, "replay label {tmp}/labels/000000.png declares 60000x60000 pixels"),
    "--set distill.lr=1e308": Row(lambda tmp, run: _distill(tmp, "--set", "distill.lr=1e308"),
                                  2, "invalid config value for distill.lr (expected a positive learning rate"),
    "--set distill.lr=inf": Row(lambda tmp, run: _distill(tmp, "--set", "distill.lr=inf"),
                                2, "invalid config value for distill.lr: 'inf' (expected a finite number)"),
    "--set nested 100k levels": Row(lambda tmp, run: _distill(tmp, "--set", f"distill.strides={DEEP}"),
                                    2, "config value [[[[[[[[[[[[[[[[[[[[... nests deeper than 16 levels"),
    "ONNX metadata nested 100k levels": Row(
        lambda tmp, run: _distill(tmp, "--teacher", _onnx_model(tmp, DEEP)),
        2, "ONNX model {tmp}/model.onnx metadata 'classes' is nested too deeply to read"),
    "non-UTF-8 --config": Row(lambda tmp, run: _distill(tmp, "--config", _write(tmp / "latin1.yaml", LATIN1)),
                              2, "config file {tmp}/latin1.yaml is not UTF-8 text (byte 23)"),
    "non-UTF-8 cameras.yaml": Row(lambda tmp, run: _live(tmp, _write(tmp / "cameras.yaml", b"- id: caf\xe9\n")),
                                  2, "camera list {tmp}/cameras.yaml is not UTF-8 text (byte 9)"),
    "non-UTF-8 --prices": Row(
        lambda tmp, run: ["report", str(run), "--out", str(tmp / "report"), "--prices",
                          _write(tmp / "prices.yaml", b"currency: \xa4\n")],
        2, "price file {tmp}/prices.yaml is not UTF-8 text (byte 10)"),
    "corrupt summary.json in ls": Row(
        lambda tmp, run: ["ls", str(_corrupt(run, "summary.json", "{bad"))],
        2, "1 stream(s) are damaged (traffic first: summary.json is not valid JSON"),
    "corrupt failed.json in ls": Row(
        lambda tmp, run: ["ls", str(_corrupt(_partial(run), "failed.json", b"\xff"))],
        2, "1 stream(s) are damaged (traffic first: failed.json is not valid JSON"),
    "corrupt summary.json in distill --resume": Row(
        lambda tmp, run: ["distill", "synthetic:traffic", "--out", str(_corrupt(run, "summary.json", "[1, 2")),
                          *TINY, "--resume"],
        2, "{tmp}/run/" + STREAM + "/summary.json is not valid JSON"),
    "render --out rnd": Row(lambda tmp, run: ["render", str(run), "--stream", "traffic", "--out", str(tmp / "rnd")],
                            2, "cannot write a video to {tmp}/rnd: it has no file extension"),
    "render --out x.txt": Row(
        lambda tmp, run: ["render", str(run), "--stream", "traffic", "--out", str(tmp / "x.txt")],
        2, "cannot write a video to {tmp}/x.txt: .txt is not a video container"),
    "render --out x.webmx": Row(
        lambda tmp, run: ["render", str(run), "--stream", "traffic", "--out", str(tmp / "x.webmx")],
        2, "cannot write a video to {tmp}/x.webmx: .webmx is not a video container"),
    # 7. a stream id with a trailing newline
    "--stream-id 'cam\\n'": Row(lambda tmp, run: _distill(tmp, "--stream-id", "cam\n"),
                                2, "stream id 'cam\\n' is not usable in object keys"),
    # 11. smaller
    "run over a done stream with missing objects": Row(
        lambda tmp, run: ["run", "synthetic:traffic", "--out", str(_without_masks(run)), *TINY],
        1, "  traffic  stream traffic: commit {tmp}/run/" + STREAM + "/commits/000000.json names masks", stdout=True),
    "resume with a smaller --frames": Row(
        lambda tmp, run: ["distill", "synthetic:traffic", "--out", str(_partial(run)), *TINY, "--resume",
                          "--frames", "6"],
        2, "stream traffic in {tmp}/run has 8 frames committed, but this run's input ends after 6"),
    "live --duration -5": Row(lambda tmp, run: _live(tmp, "cameras.yaml", "--duration", "-5"),
                              2, "--duration -5 is not a positive number of seconds"),
    "publish --duration -5": Row(lambda tmp, run: ["publish", "synthetic:traffic", "udp://127.0.0.1:9", "--duration",
                                                   "-5"], 2, "--duration -5 is not a positive number of seconds"),
    "invalid S3 bucket name": Row(lambda tmp, run: ["ls", "s3://Bad_Bucket!/runs"],
                                  2, "s3://Bad_Bucket!/runs names an invalid S3 bucket 'Bad_Bucket!'"),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny run of synthetic:traffic (8 frames in two segments), copied by the rows that change it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["distill", "synthetic:traffic", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("name", list(ROWS))
def test_hostile_input(name, finished_run, tmp_path, capsys, one_torch_thread):
    row = ROWS[name]
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    argv = row.argv(tmp_path, run)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    words = row.words.format(tmp=tmp_path)
    if row.stdout:
        assert any(line.startswith(words) for line in out.splitlines()), out
    else:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"odist: error: {words}"), lines[0]
    assert code == row.code, err
    assert not (tmp_path / "new" / "streams" / "stream_id=cam\n").exists()

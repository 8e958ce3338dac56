"""Run a documentation page's examples as a reader would and compare what they print with the page.

A page's examples, in document order, are

- shell sessions: fenced ``console`` blocks of ``$ COMMAND`` lines (a line ending in ``\\`` continues on the
  next), each followed by the output it prints; a ``...`` line stands for any number of lines;
- Python examples: fenced ``python`` blocks, each optionally followed at once by a ``text`` block of what it
  prints;
- files the reader writes: a fenced block with a title (```` ```json title="cameras.jsonl" ````) is written to
  that name.

They run word for word, in order, in one fresh folder: each command in its own ``bash -c`` (so no state but
files carries over), each Python block in one namespace shared by the page. A block that cannot run there
(it needs a cloud account, or a second terminal) is preceded by ``<!-- docs-test: skip REASON -->`` and shown,
not run. Output is compared after ``normalise``: numbers, times, digests and the fresh folder's path vary from
run to run; the words, the order and the lines do not.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>[ ]*)(?:<!-- docs-test: skip (?P<reason>.*?) -->\n+(?P=indent))?"
                   r"```(?P<lang>\w*)(?: title=\"(?P<title>[\w./-]+)\")?\n(?P<body>.*?)^(?P=indent)```\n", re.S | re.M)


@dataclass(frozen=True)
class Step:
    """One command or Python block, what the page shows it prints, and where it is."""

    kind: str  # "shell", "python" or "file"
    code: str
    expected: str
    line: int
    skip: str = ""  # why the page shows it without running it
    path: str = ""  # where a "file" step writes its text


def steps(text: str) -> list[Step]:
    """A page's examples in document order."""
    found: list[Step] = []
    blocks = list(FENCE.finditer(text))
    for index, block in enumerate(blocks):
        line = text.count("\n", 0, block.start("lang")) + 1
        skip = block.group("reason") or ""
        body = textwrap.dedent(block.group("body"))
        if block.group("title"):
            found.append(Step("file", body, "", line, skip, block.group("title")))
        elif block.group("lang") == "console":
            found += [Step("shell", code, out, line, skip) for code, out in _session(body)]
        elif block.group("lang") == "python":
            after = blocks[index + 1] if index + 1 < len(blocks) else None
            shown = (textwrap.dedent(after.group("body")) if after and after.group("lang") == "text"
                     and not after.group("title") and text[block.end():after.start()].strip() == "" else "")
            found.append(Step("python", body, shown, line, skip))
    return found


def _session(body: str) -> list[tuple[str, str]]:
    commands: list[tuple[str, str]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"console block line {lines[i]!r} is neither a command nor its output")
        command = [lines[i][2:]]
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        commands.append(("\n".join(command), "\n".join(output)))
    return commands


_BAR = re.compile(r"\d+%\|")  # a tqdm progress bar: its rate and units change with the machine's speed
_FOLDER = re.compile(r"/tmp/[\w.-]+")
_HEX = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d[\d,]*(\.\d+)?(e[-+]?\d+)?")


def normalise(text: str, folder: str | None = None) -> list[str]:
    """Lines with what varies between runs taken out; progress bars and blank lines dropped."""
    if folder:
        text = text.replace(folder, "<DIR>")
    lines = []
    for line in text.splitlines():
        line = line.rsplit("\r", 1)[-1]
        if _BAR.search(line) or not line.strip():
            continue
        if line.strip().isdigit():  # a line that is one number is the point of its command (echo $?)
            lines.append(line.strip())
            continue
        line = _FOLDER.sub("<DIR>", line)
        line = _HEX.sub("<HEX>", line)
        line = _NUMBER.sub("N", line)
        lines.append(" ".join(line.split()))
    return lines


def mismatch(expected: str, printed: str, folder: str | None = None) -> str | None:
    """Why ``printed`` does not show ``expected``'s lines in order, or None.

    Other lines may come between them: tools interleave their own log lines (Ray, ONNX Runtime) with the ones a
    page shows, and a page may shorten long output to ``...``.
    """
    shown = normalise(printed, folder)
    position = 0
    for want in normalise(expected):
        if want == "...":
            continue
        if want not in shown[position:]:
            return f"expected {want!r} after line {position} of the output"
        position = shown.index(want, position) + 1
    return None


def environment(folder: Path) -> dict[str, str]:
    """The environment the commands run in: this checkout's odist and this interpreter's tools first, and a
    user's teacher-cost cache (in ``folder``, empty at first) instead of the test suite's fixed figure."""
    env = dict(os.environ)
    env.pop("ODIST__TEACHER__DEVICE_MS", None)
    env["ODIST_CACHE"] = str(folder / ".cache" / "odist")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "200"
    return env


def run_step(step: Step, folder: Path, namespace: dict, timeout_s: float) -> str:
    """What one step printed (stdout and stderr together).

    Each command runs in a shell of its own that starts with ``$?`` set to the previous command's exit status
    (kept in ``namespace``), as in the reader's terminal.
    """
    if step.kind == "file":
        (folder / step.path).write_text(step.code)
        return ""
    if step.kind == "shell":
        status = namespace.get("__status__", 0)
        done = subprocess.run(["bash", "-c", f"(exit {status})\n{step.code}"], cwd=folder, env=environment(folder),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
        namespace["__status__"] = done.returncode
        return done.stdout
    printed = io.StringIO()
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(step.code, f"docs line {step.line}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return printed.getvalue()


def check_page(page: str, folder: Path, timeout_s: float = 1800, checkout: tuple[str, ...] = ()) -> list[str]:
    """Run every example of ``docs/PAGE`` in ``folder``; the differences from the page, one per step.

    ``checkout`` names files and folders of this checkout copied there first, for a page whose reader works
    in the checkout (the cluster page runs ``cluster/local/ray-local.sh``).
    """
    for name in checkout:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    problems = []
    namespace: dict = {"__name__": "__docs__"}
    for step in steps((DOCS / page).read_text()):
        if step.skip:
            continue
        printed = run_step(step, folder, namespace, timeout_s)
        why = mismatch(step.expected, printed, str(folder))
        if why:
            problems.append(f"{page}:{step.line}: {step.code!r}: {why}\nprinted:\n{printed}")
    return problems

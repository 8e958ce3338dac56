"""The page runner reads examples as a reader sees them and tells a changed output from a varying number."""

from __future__ import annotations

from doc_pages import check_page, mismatch, normalise, steps

PAGE = '''Intro.

```yaml title="cameras.yaml"
- id: door
```

  <!-- docs-test: skip needs a bucket -->
  ```console
  $ aws s3 ls s3://fleet/
  ```

```console
$ odist ls runs/r \\
      --quiet
STREAM  STATUS
traffic done      48 frames
$ echo $?
0
```

```python
print(1 + 1)
```

```text
2
```

```python
x = 3
```
'''


def test_steps_in_document_order_with_files_skips_and_continued_commands():
    found = steps(PAGE)
    assert [(s.kind, bool(s.skip)) for s in found] == [("file", False), ("shell", True), ("shell", False),
                                                       ("shell", False), ("python", False), ("python", False)]
    assert found[0].path == "cameras.yaml" and found[0].code == "- id: door\n"
    assert found[1].skip == "needs a bucket" and found[1].code == "aws s3 ls s3://fleet/"
    assert found[2].code == "odist ls runs/r \\\n      --quiet"
    assert found[2].expected == "STREAM  STATUS\ntraffic done      48 frames"
    assert (found[4].code, found[4].expected, found[5].expected) == ("print(1 + 1)\n", "2\n", "")


def test_normalise_takes_out_numbers_digests_folders_bars_and_spacing():
    printed = ("traffic:  40%|####  | 2/5 [00:01<00:02]\rtraffic: 100%|#####| 5/5 [00:03<00:00]\n"
               "results: /tmp/pytest-7/x/runs/demo/   \n\n"
               "from part-000000-000003-9b8a6ff6.parquet: mIoU 0.609, 14.3x\n")
    assert normalise(printed, "/tmp/pytest-7/x") == ["results: <DIR>/runs/demo/",
                                                    "from part-N-N-<HEX>.parquet: mIoU N, Nx"]
    assert normalise("results: /tmp/demo/runs/demo/") == ["results: <DIR>/runs/demo/"]
    assert normalise("1\n") == ["1"] and mismatch("1", "0\n") is not None  # an exit status is compared


def test_mismatch_accepts_other_numbers_and_interleaved_lines_but_not_other_words_or_order():
    shown = "frames 300, keyframes 9\nmIoU 0.609\n"
    assert mismatch(shown, "(ray) a warning\nframes 48, keyframes 6\nlog\nmIoU 0.531\n") is None
    assert mismatch(shown, "frames 48, keyframes 6\n") is not None
    assert mismatch(shown, "mIoU 0.5\nframes 48, keyframes 6\n") is not None
    assert mismatch(shown, "frames 48, updates 6\nmIoU 0.5\n") is not None
    assert mismatch("a\n...\nb\n", "a\nx\ny\nb\n") is None


def test_check_page_runs_files_commands_and_python_in_one_folder(tmp_path, monkeypatch):
    import doc_pages

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "p.md").write_text(
        '```text title="n.txt"\n41\n```\n\n```console\n$ cat n.txt\n41\n$ echo two\nthree\n'
        '$ cat missing.txt\ncat: missing.txt: No such file or directory\n$ echo $?\n1\n```\n\n'
        '```python\nprint(open("n.txt").read().strip())\n```\n\n```text\n41\n```\n')
    monkeypatch.setattr(doc_pages, "DOCS", tmp_path / "docs")
    (work := tmp_path / "work").mkdir()
    problems = check_page("p.md", work)
    assert len(problems) == 1 and "'echo two'" in problems[0] and "'three'" in problems[0]

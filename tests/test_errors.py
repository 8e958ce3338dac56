"""Error messages are for people: no secrets, no Python reprs."""

from odist.errors import ConfigError, plain


def test_python_reprs_become_plain_words():
    assert plain("expected <class 'float'>, got <class 'str'>") == "expected float, got str"
    assert plain("cannot identify image file <_io.BytesIO object at 0x7f18d730b5b0>") == \
        "cannot identify image file in-memory data"
    assert plain("a <class 'numpy.int64'>") == "a numpy.int64"


def test_every_odist_error_is_plain_and_redacted():
    error = ConfigError("rtsp://admin:hunter2x@cam/s gave <foo.Bar object at 0xdeadbeef>", "<class 'int'>")
    assert "hunter2x" not in str(error) and "0xdeadbeef" not in str(error) and "<class" not in str(error)

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


def test_a_multi_line_library_message_becomes_one_line():
    error = ConfigError("cannot list s3://b/p: Parameter validation failed:\nInvalid bucket name \"B!\"\n",
                        "write one entry per camera:\n  - id: NAME")
    assert "\n" not in str(error)
    assert error.what == 'cannot list s3://b/p: Parameter validation failed: Invalid bucket name "B!"'
    assert error.fix == "write one entry per camera: - id: NAME"

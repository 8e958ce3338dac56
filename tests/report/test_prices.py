"""Price files: defaults, YAML and JSON, instance types, and bad files naming the key and the fix."""

from __future__ import annotations

import json

import pytest

from odist.errors import ConfigError
from odist.report.prices import InstanceType, Prices, load_prices, parse_prices


def test_defaults_without_a_file():
    prices = load_prices(None)
    assert prices == Prices()
    assert (prices.gpu_hour, prices.cpu_hour, prices.currency) == (2.50, 0.05, "USD")
    assert prices.teacher_rate() == ("gpu", 2.50)
    assert prices.student_rate("cpu") == ("cpu", 0.05)
    assert prices.student_rate("cuda:0") == ("gpu", 2.50)
    assert prices.student_rate(None) == ("gpu", 2.50)


def test_yaml_file(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("currency: EUR\ngpu_hour: 3\ncpu_hour: 0.1\nstudent_device: cpu\n")
    prices = load_prices(path)
    assert prices.currency == "EUR" and prices.gpu_hour == 3.0
    assert prices.student_rate("cuda") == ("cpu", 0.1)
    assert "EUR" in prices.describe()


def test_json_file_with_instance_types(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({
        "instance_types": {"g5.xlarge": {"hourly": 1.0, "gpus": 1, "cpus": 4},
                           "g5.12xlarge": {"hourly": 6.0, "gpus": 4, "cpus": 48},
                           "c7i.large": {"hourly": 0.09, "cpus": 2}},
        "teacher_instance": "g5.12xlarge", "student_instance": "c7i.large"}))
    prices = load_prices(path)
    assert prices.instance_types["g5.xlarge"] == InstanceType(1.0, 1, 4)
    assert prices.teacher_rate() == ("gpu", 1.5)
    assert prices.student_rate("cuda") == ("cpu", pytest.approx(0.045))


def test_empty_file_is_the_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_prices(path) == Prices()


@pytest.mark.parametrize(("raw", "what", "fix"), [
    ({"gpu_hours": 2}, "unknown key 'gpu_hours'", "gpu_hour"),
    ({"gpu_hour": "cheap"}, "gpu_hour is 'cheap'", "non-negative number"),
    ({"cpu_hour": -1}, "cpu_hour is -1", "non-negative number"),
    ({"gpu_hour": True}, "gpu_hour is True", "non-negative number"),
    ({"teacher_device": "tpu"}, "teacher_device is 'tpu'", "gpu, cpu"),
    ({"student_device": "npu"}, "student_device is 'npu'", "gpu, cpu, auto"),
    ({"teacher_instance": "p5"}, "unknown instance type 'p5'", "instance_types"),
    ({"instance_types": [1, 2]}, "instance_types is not a mapping", "hourly"),
    ({"instance_types": {"g5": {"gpus": 1}}}, "instance_types.g5 has no hourly price", "hourly"),
    ({"instance_types": {"g5": {"hourly": 1, "ram": 4}}}, "unknown key instance_types.g5.ram", "hourly"),
    ({"instance_types": {"g5": {"hourly": 1, "gpus": -1}}}, "gpus=-1", "gpus to 0 or more"),
    ({"instance_types": {"g5": {"hourly": "x"}}}, "hourly is 'x'", "non-negative number"),
    ([1, 2], "not a mapping", "KEY: VALUE"),
])
def test_bad_values_name_the_key_and_the_fix(raw, what, fix):
    with pytest.raises(ConfigError) as info:
        parse_prices(raw, "prices.yaml")
    assert what in info.value.what and "prices.yaml" in info.value.what
    assert fix in info.value.fix


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read price file"):
        load_prices(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpu_hour: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML/JSON") as info:
        load_prices(bad)
    assert info.value.fix == "fix its syntax"


def test_a_bad_yaml_file_is_one_line_naming_where(tmp_path):
    from odist.errors import ConfigError

    path = tmp_path / "prices.yaml"
    path.write_text("gpu_hour: 2.5\ncurrency: [EUR\n")
    with pytest.raises(ConfigError) as info:
        load_prices(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "line 3" in message and "prices.yaml" in message, message


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_bytes("currency: \xa4\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"price file .* is not UTF-8 text \(byte 10\)"):
        load_prices(path)

"""What device time costs: the price file of ``odist report --prices``.

A YAML or JSON mapping; every key is optional and defaults to the value below::

    currency: USD            # a label for the money columns
    gpu_hour: 2.50           # price of one GPU-hour
    cpu_hour: 0.05           # price of one CPU core-hour
    teacher_device: gpu      # gpu | cpu: the rate teacher device-seconds are charged at
    student_device: auto     # auto | gpu | cpu; auto: the stream's config device (cpu -> cpu, cuda -> gpu),
                             # gpu when the stream does not say
    teacher_instance: null   # optional instance type (below) whose price sets the teacher's rate
    student_instance: null   # the same for students
    instance_types:          # optional: NAME: {hourly: PRICE, gpus: N, cpus: N}
      g5.xlarge: {hourly: 1.006, gpus: 1, cpus: 4}

An instance type's device-hour is ``hourly / gpus`` on a GPU instance (``gpus`` > 0) and ``hourly / cpus``
on a CPU-only one; a role that names an instance runs on that instance's device kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from odist.config_parse import parse_problem
from odist.errors import ConfigError

DEVICES = ("gpu", "cpu")
_KEYS = ("currency", "gpu_hour", "cpu_hour", "teacher_device", "student_device", "teacher_instance",
         "student_instance", "instance_types")
_INSTANCE_KEYS = ("hourly", "gpus", "cpus")


@dataclass(frozen=True)
class InstanceType:
    """A machine sold by the hour with ``gpus`` GPUs and ``cpus`` CPU cores."""

    hourly: float
    gpus: int = 0
    cpus: int = 1

    @property
    def device(self) -> str:
        return "gpu" if self.gpus > 0 else "cpu"

    @property
    def device_hour(self) -> float:
        return self.hourly / (self.gpus if self.gpus > 0 else self.cpus)


@dataclass(frozen=True)
class Prices:
    """Hourly prices of devices, and which device each role's seconds are charged at."""

    currency: str = "USD"
    gpu_hour: float = 2.50
    cpu_hour: float = 0.05
    teacher_device: str = "gpu"
    student_device: str = "auto"
    teacher_instance: str | None = None
    student_instance: str | None = None
    instance_types: dict[str, InstanceType] = field(default_factory=dict)

    def device_hour(self, device: str) -> float:
        """The price of one hour of ``device`` (``gpu`` or ``cpu``)."""
        return self.gpu_hour if device == "gpu" else self.cpu_hour

    def teacher_rate(self) -> tuple[str, float]:
        """(device, price per hour) of teacher time."""
        if self.teacher_instance is not None:
            kind = self.instance_types[self.teacher_instance]
            return kind.device, kind.device_hour
        return self.teacher_device, self.device_hour(self.teacher_device)

    def student_rate(self, config_device: str | None) -> tuple[str, float]:
        """(device, price per hour) of a student whose stream ran with ``config_device`` (None: unknown)."""
        if self.student_instance is not None:
            kind = self.instance_types[self.student_instance]
            return kind.device, kind.device_hour
        device = self.student_device
        if device == "auto":
            device = "cpu" if config_device == "cpu" else "gpu"
        return device, self.device_hour(device)

    def describe(self) -> str:
        """One line for reports."""
        teacher, teacher_hour = self.teacher_rate()
        if self.student_instance is not None:
            student = f"{self.student_instance} ({self.student_rate(None)[1]:g}/h)"
        elif self.student_device == "auto":
            student = "its stream's device"
        else:
            student = f"{self.student_device} ({self.device_hour(self.student_device):g}/h)"
        return (f"GPU-hour {self.gpu_hour:g} {self.currency}, CPU-hour {self.cpu_hour:g} {self.currency}; "
                f"teacher on {self.teacher_instance or teacher} ({teacher_hour:g}/h), student on {student}")


def load_prices(path: str | Path | None) -> Prices:
    """The prices in the YAML/JSON file at ``path``; the defaults for None. A bad file is a ``ConfigError``."""
    if path is None:
        return Prices()
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read price file {where}: {exc.strerror}",
                          "pass an existing YAML/JSON file") from None
    try:
        raw = yaml.safe_load(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"price file {where} is not UTF-8 text (byte {exc.start})",
                          "save it as UTF-8 YAML or JSON") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"price file {where} is not valid YAML/JSON: {parse_problem(exc)}",
                          "fix its syntax") from None
    if raw is None:
        return Prices()
    return parse_prices(raw, where)


def parse_prices(raw: Any, where: str = "price file") -> Prices:
    """A ``Prices`` from a parsed mapping; names the bad key and what it should hold."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} holds a {type(raw).__name__}, not a mapping", "write KEY: VALUE lines")
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}", f"use only {', '.join(_KEYS)}")
    defaults = Prices()
    instances = _instance_types(raw.get("instance_types") or {}, where)
    prices = Prices(
        currency=str(raw.get("currency", defaults.currency)),
        gpu_hour=_price(raw, "gpu_hour", defaults.gpu_hour, where),
        cpu_hour=_price(raw, "cpu_hour", defaults.cpu_hour, where),
        teacher_device=_choice(raw, "teacher_device", defaults.teacher_device, DEVICES, where),
        student_device=_choice(raw, "student_device", defaults.student_device, (*DEVICES, "auto"), where),
        teacher_instance=_instance_name(raw, "teacher_instance", instances, where),
        student_instance=_instance_name(raw, "student_instance", instances, where),
        instance_types=instances,
    )
    return prices


def _price(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: {key} is {value!r}", f"set {key} to a non-negative number (price per hour)")
    return float(value)


def _choice(raw: dict[str, Any], key: str, default: str, allowed: tuple[str, ...], where: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}: {key} is {value!r}", f"set {key} to one of {', '.join(allowed)}")
    return value


def _instance_name(raw: dict[str, Any], key: str, instances: dict[str, InstanceType], where: str) -> str | None:
    value = raw.get(key)
    if value is not None and value not in instances:
        known = ", ".join(instances) or "none defined"
        raise ConfigError(f"{where}: {key} names unknown instance type {value!r}",
                          f"define it under instance_types (known: {known})")
    return value


def _instance_types(raw: Any, where: str) -> dict[str, InstanceType]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: instance_types is not a mapping", "write NAME: {hourly: PRICE, gpus: N, cpus: N}")
    types = {}
    for name, spec in raw.items():
        key = f"instance_types.{name}"
        if not isinstance(spec, dict) or "hourly" not in spec:
            raise ConfigError(f"{where}: {key} has no hourly price", f"write {name}: {{hourly: PRICE, gpus: N}}")
        for inner in spec:
            if inner not in _INSTANCE_KEYS:
                raise ConfigError(f"{where}: unknown key {key}.{inner}", f"use only {', '.join(_INSTANCE_KEYS)}")
        gpus, cpus = spec.get("gpus", 0), spec.get("cpus", 1)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (gpus, cpus)) or gpus < 0 or cpus < 1:
            raise ConfigError(f"{where}: {key} has gpus={gpus!r}, cpus={cpus!r}",
                              "set gpus to 0 or more and cpus to 1 or more (whole numbers)")
        types[str(name)] = InstanceType(_price(spec, "hourly", 0.0, f"{where}: {key}"), gpus, cpus)
    return types

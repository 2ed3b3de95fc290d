"""Loading pydantic specs from YAML files with errors that name the file and the field."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cligym_env.errors import SpecError

M = TypeVar("M", bound=BaseModel)

# The largest spec file read: task.yaml files reach ~0.65 MB (long PASS_TO_PASS lists); beyond this a file is
# refused before it is read whole, so a huge or endless one (a link to /dev/zero) cannot exhaust memory.
MAX_SPEC_BYTES = 32 << 20
# libyaml's loader where PyYAML has it: ~9x faster than the pure-Python one on large task.yaml files.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read `path` as YAML and validate it as `model`.

    Raises SpecError such as "tasks/gold/x/gold.yaml: field 'test_timeout': Input should be a valid integer",
    or "...: 40000000 bytes, more than a spec may have (33554432)" for a file over `MAX_SPEC_BYTES`.
    """
    text = _read_bounded(path)
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {describe_validation_error(exc)}") from None


def _read_bounded(path: Path) -> str:
    """The text of `path`; SpecError if it is over `MAX_SPEC_BYTES`, found without reading more than that."""
    try:
        with path.open("rb") as f:
            size, data = os.fstat(f.fileno()).st_size, b""
            if size <= MAX_SPEC_BYTES:
                data = f.read(MAX_SPEC_BYTES + 1)  # a device or a growing file may hold more than its size
                size = max(size, len(data))
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: {size} bytes, more than a spec may have ({MAX_SPEC_BYTES})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: "field 'a.b': message"."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{loc}': {err['msg']}")
    return "; ".join(parts)


class _ReadableDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """Multi-line strings as `|` blocks, so problem statements and scripts read as written. libyaml's emitter
    where PyYAML has it: ~10x faster on task.yaml files with long test lists, and byte for byte the same text."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _str_representer)


def dump_yaml_model(model: BaseModel) -> str:
    """The model as readable YAML (field order kept, None values dropped)."""
    data = model.model_dump(mode="json", exclude_none=True)
    return yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=110)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file + rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # one per writer
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)

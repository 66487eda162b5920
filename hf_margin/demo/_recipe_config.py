"""A recipe's settings: its setup dataclass and paths from ``[config.yaml] [--field value ...]``, read as the fields'
types and checked before any work (`parse_recipe_arguments`), and the output folder checked writable.

YAML 1.1 (PyYAML) reads ``1e-3`` as a string and ``--epochs`` alone would be true, so neither the config's values
nor the words on the command line are trusted as typed: each is converted to its field's annotation (int, float,
bool, str, Path, ``X | None``, ``Literal[...]``, ``tuple[X, ...]``, fixed tuples, lists, nested sequences) or
rejected with a ValueError naming the field, the expected type and the value received. Unknown fields are listed
with the closest known names.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NULL = ("null", "~")


@dataclass
class RecipePaths:
    """The paths every recipe takes besides its setup."""

    data_dir: str | None = None
    out_dir: str = "hf_margin_out"


def parse_overrides(words: list[str]) -> dict[str, list[str]]:
    """``--field v1 [v2 ...]`` words as {field: [words]} (the words as typed); a field given twice is an error."""
    parsed: dict[str, list[str]] = {}
    key = None
    for word in words:
        if word.startswith("--") and len(word) > 2:
            key = word[2:]
            if key in parsed:
                raise ValueError(f"--{key} given twice in {' '.join(words)}")
            parsed[key] = []
        elif key is None:
            raise ValueError(f"overrides must start with --field, got {word!r} in {' '.join(words)}")
        else:
            parsed[key].append(word)
    return parsed


def parse_recipe_arguments(setup_type: type, default_out_dir: str, argv: list[str]) -> tuple[Any, RecipePaths]:
    """A recipe's setup (an instance of the dataclass `setup_type`) and its `RecipePaths` from
    ``[config.yaml] [--field value ...]``: the config's fields, then the words after it over them.

    Every value is converted to its field's type or rejected (ValueError naming the field; see the module's
    docstring). Words: ``--flag`` alone is true for a bool field; ``null`` alone unsets an optional field;
    several words make a sequence field, one word per item (an item that is itself a sequence is written as
    YAML, ``"[1, 0.5]"``).
    """
    import yaml

    hints = {**_field_types(setup_type), **_field_types(RecipePaths)}
    values: dict[str, Any] = {}
    if argv and argv[0].endswith((".yaml", ".yml")):
        config, argv = argv[0], argv[1:]
        loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{config} must be a mapping of field: value, got {type(loaded).__name__}")
        fields = {str(key): value for key, value in (loaded or {}).items()}
        try:
            _check_known(fields, hints, setup_type, prefix="")
            values.update({name: _convert(name, hints[name], value) for name, value in fields.items()})
        except ValueError as error:
            raise ValueError(f"{config}: {error}") from None
    overrides = parse_overrides(argv)
    _check_known(overrides, hints, setup_type, prefix="--")
    values.update({name: _from_words(name, hints[name], words) for name, words in overrides.items()})
    paths = {name: values.pop(name) for name in list(values) if name in _field_types(RecipePaths)}
    paths.setdefault("out_dir", default_out_dir)
    return setup_type(**values), RecipePaths(**paths)


def check_output_folder(path: Path) -> None:
    """Raise ValueError unless `path` is a writable folder or can be created as one (nothing is left behind).

    The nearest existing folder on the way is tried with a temporary file, deleted at once: permission bits
    (`os.access`) say nothing for root nor for a read-only mount.
    """
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"out_dir {path} cannot be created: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"out_dir {path} cannot be written: {existing} is not writable ({error})") from None


def _field_types(setup_type: type) -> dict[str, Any]:
    if not dataclasses.is_dataclass(setup_type):
        raise TypeError(f"setup_type must be a dataclass, got {setup_type!r}")
    hints = get_type_hints(setup_type)
    return {f.name: hints[f.name] for f in dataclasses.fields(setup_type) if f.init}


def _check_known(given: dict[str, Any], hints: dict[str, Any], setup_type: type, prefix: str) -> None:
    unknown = [name for name in given if name not in hints]
    if not unknown:
        return
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, hints, n=1)
        described.append(f"{prefix}{name} (did you mean {prefix}{close[0]}?)" if close else f"{prefix}{name}")
    raise ValueError(f"unknown field(s) of {setup_type.__name__}: {', '.join(described)}; fields: {', '.join(hints)}")


def _from_words(name: str, kind: Any, words: list[str]) -> Any:
    """The words typed after ``--name`` as a value of type `kind`."""
    if len(words) == 1 and words[0] in _NULL and _optional(kind):
        return None
    if _sequence(kind):
        return _convert(name, kind, words)
    if not words:
        if _bare(kind) is bool:
            return True
        raise ValueError(f"--{name} needs a value ({_type_name(kind)})")
    if len(words) > 1:
        raise ValueError(f"--{name} takes one value, got {len(words)}: {' '.join(words)}")
    return _convert(name, kind, words[0])


def _convert(name: str, kind: Any, value: Any) -> Any:
    """`value` (from YAML, or a word as a str) as type `kind`; a str is parsed as the type needs."""
    if _optional(kind) and (value is None or (isinstance(value, str) and value in _NULL)):
        return None
    kind = _bare(kind)
    origin, arguments = get_origin(kind), get_args(kind)
    if origin in (typing.Union, types.UnionType):
        for member in arguments:
            try:
                return _convert(name, member, value)
            except ValueError:
                continue
        raise ValueError(f"{name} must be a {_type_name(kind)}, got {value!r}")
    if origin is Literal:
        for choice in arguments:
            if value == choice or (isinstance(value, str) and value == str(choice)):
                return choice
        raise ValueError(f"{name} must be one of {', '.join(map(repr, arguments))}; got {value!r}")
    if origin in (tuple, list):
        return _convert_sequence(name, origin, arguments, value)
    if kind is Any:
        return value
    converter = _SCALARS.get(kind)
    if converter is None:
        return value  # a type this parser does not know: passed as given, the dataclass decides
    converted = converter(value)
    if converted is None:
        raise ValueError(f"{name} must be {_type_name(kind, article=True)}, got {value!r}")
    return converted


def _convert_sequence(name: str, origin: type, arguments: tuple[Any, ...], value: Any) -> Any:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if (len(arguments) == 2 and arguments[1] is Ellipsis) or origin is list:
        kinds = [arguments[0] if arguments else Any] * len(items)
    else:
        if len(items) != len(arguments):
            raise ValueError(f"{name} must have {len(arguments)} values, got {len(items)}: {items!r}")
        kinds = list(arguments)
    converted = []
    for index, (kind, item) in enumerate(zip(kinds, items, strict=True)):
        if isinstance(item, str) and _sequence(kind):
            import yaml

            item = yaml.safe_load(item)
        converted.append(_convert(f"{name}[{index}]", kind, item))
    return origin(converted)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # a YAML number where text is expected (``out_dir: 7``) is the text it was written as
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _path(value: Any) -> Path | None:
    text = _str(value)
    return None if text is None else Path(text)


_SCALARS: dict[Any, Any] = {bool: _bool, int: _int, float: _float, str: _str, Path: _path}


def _optional(kind: Any) -> bool:
    return get_origin(kind) in (typing.Union, types.UnionType) and type(None) in get_args(kind)


def _bare(kind: Any) -> Any:
    """`kind` without its ``None`` option (``int | None`` -> int)."""
    if not _optional(kind):
        return kind
    rest = tuple(member for member in get_args(kind) if member is not type(None))
    return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007 (a Union built at run time)


def _sequence(kind: Any) -> bool:
    return get_origin(_bare(kind)) in (tuple, list)


def _type_name(kind: Any, article: bool = False) -> str:
    if kind is float:
        name = "finite float"
    elif kind is bool:
        name = "bool (true/false)"
    else:
        name = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
    if not article:
        return name
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"

"""Typed settings dataclasses shared by the studies: `from_dict` that names unknown keys, `require` that names the
config key a bad value came from; `build_config` makes any settings class (generator, sampler, MDN, phi) of its
config section."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, fields
from typing import Any, ClassVar, Mapping


class ConfigBase:
    """to_dict / from_dict and key-naming checks shared by the studies' config dataclasses."""

    SECTION: ClassVar[str]  # config path, e.g. "mixture_vae.model"

    def require(self, ok: bool, key: str, what: str) -> None:
        """Raise a ValueError naming `SECTION.key`, what it must be and what it is, when not `ok`."""
        if not ok:
            raise ValueError(f"{self.SECTION}.{key} {what}, got {getattr(self, key)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown keys {unknown} in {cls.SECTION}; known keys: {known}")
        return cls(**d)


def is_int(v: Any) -> bool:
    """An int that is not a bool (YAML `true` is not a count)."""
    return isinstance(v, int) and not isinstance(v, bool)


class SectionedSettings:
    """Settings of one model made of config dataclasses by section name (e.g. model / loss / train): from_dict
    builds each section with its own class (whose errors name its keys), an unknown section is an error naming
    the config section. Subclasses are dataclasses with one field per entry of SECTIONS."""

    SECTIONS: ClassVar[dict[str, type]]  # section name -> its ConfigBase dataclass
    DEFAULT_SECTION: ClassVar[str]  # the config section named in errors when the caller gives none

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], section: str | None = None):
        unknown = sorted(set(d) - set(cls.SECTIONS))
        if unknown:
            raise ValueError(f"config section '{section or cls.DEFAULT_SECTION}': unknown key(s) {unknown}; "
                             f"known: {list(cls.SECTIONS)}")
        return cls(**{name: kind.from_dict(dict(d.get(name, {}))) for name, kind in cls.SECTIONS.items()})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in self.SECTIONS}


@contextlib.contextmanager
def config_section(section: str):
    """Name the config section in the error when a settings dict has a key (or value) the dataclass refuses."""
    try:
        yield
    except (TypeError, ValueError) as e:
        raise type(e)(f"config section '{section}': {e}") from None


def build_config(cls: type, settings: Mapping[str, Any] | None, section: str) -> Any:
    """`cls.from_dict(settings)` where the class has one, else `cls(**settings)`, errors naming `section`."""
    settings = dict(settings or {})
    with config_section(section):
        return cls.from_dict(settings) if hasattr(cls, "from_dict") else cls(**settings)

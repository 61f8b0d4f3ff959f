"""Codec specs as users write them → codec objects.

A spec is a name with optional `:key=value` options, e.g. `webp`, `versacodec-direct`,
`versacodec-generative:steps=4:cfg=2.5`, `versacodec:decoder=direct:model=runs/bundle`.
The whole spec names the result rows, so two modes of one codec stay apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from versacodec.errors import InputError
from versacodec.evaluation.baselines import BASELINES
from versacodec.evaluation.cache import EncodeCache
from versacodec.evaluation.codecs import ImageCodec
from versacodec.registry import Registry

# Every codec a spec may name; each class builds itself from the spec's options (`from_spec`).
CODECS: Registry[type] = Registry("codec", {
    **BASELINES,
    **{name: "versacodec.evaluation.versacodec_codec:VersacodecCodec"
       for name in ("versacodec", "versacodec-direct", "versacodec-generative")},
})


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, *pairs = spec.strip().split(":")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"codec option '{pair}' in '{spec}' must look like key=value")
        options[key] = _value(value)
    CODECS[name]
    return name, options


def make_codec(spec: str, *, cache: EncodeCache | None = None, always_shrink: bool = False,
               model: str | Path | None = None) -> ImageCodec:
    name, options = parse_spec(spec)
    return CODECS[name].from_spec(spec, options, cache=cache, always_shrink=always_shrink, model=model)

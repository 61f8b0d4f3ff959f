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

# versacodec names and the decoder each implies.
VERSACODEC_NAMES = {"versacodec": None, "versacodec-direct": "direct", "versacodec-generative": "generative"}
CODEC_NAMES = (*BASELINES, *VERSACODEC_NAMES)


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
    if name not in CODEC_NAMES:
        raise InputError(f"unknown codec '{name}'; choose from {', '.join(CODEC_NAMES)}")
    return name, options


def make_codec(spec: str, *, cache: EncodeCache | None = None, always_shrink: bool = False,
               model: str | Path | None = None) -> ImageCodec:
    name, options = parse_spec(spec)
    if name in BASELINES:
        if options:
            raise InputError(f"baseline codec '{name}' takes no options (got {', '.join(options)})")
        return BASELINES[name](spec, always_shrink=always_shrink, cache=cache)
    from versacodec.evaluation.versacodec_codec import VersacodecCodec

    decoder = VERSACODEC_NAMES[name]
    if decoder is not None:
        if options.get("decoder", decoder) != decoder:
            raise InputError(f"'{name}' implies decoder={decoder}; use 'versacodec:decoder=...' to choose another")
        options["decoder"] = decoder
    return VersacodecCodec(spec, model=options.pop("model", model), cache=cache, **options)

"""One pattern for everything pluggable: a `Registry` maps names to implementations of one kind.

Training stages, latent spaces, model component classes named in bundle.json (pixel decoders among them),
evaluation codecs and tasks, region finders and the web page's baselines are each one registry.
An entry is the object itself or a "module:attribute" path imported when the name is first
looked up, so listing names (argument parsing, help, validation) imports nothing heavy and a
module never has to import the implementations it offers. Users add their own with `add` or
the `register` decorator.

>>> FRUIT = Registry("fruit", {"apple": "fractions:Fraction"})
>>> FRUIT.add("pear", int)
>>> sorted(FRUIT), FRUIT["apple"].__name__, "plum" in FRUIT
(['apple', 'pear'], 'Fraction', False)
>>> FRUIT["plum"]
Traceback (most recent call last):
...
versacodec.errors.InputError: unknown fruit 'plum'; choose from apple, pear
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from typing import Generic, TypeVar

from versacodec.errors import InputError, VersacodecError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    def __init__(self, kind: str, entries: Mapping[str, str | T] | None = None,
                 error: type[VersacodecError] = InputError) -> None:
        self.kind = kind  # what the names name, for messages: "training stage", "latent space", ...
        self.error = error  # raised for an unknown name: InputError for user settings, ModelError for bundles
        self._entries: dict[str, str | T] = dict(entries or {})
        self._loaded: dict[str, T] = {}

    def add(self, name: str, target: str | T) -> None:
        """Offer `target` (an object, or "module:attribute" to import on first use) as `name`."""
        self._entries[name] = target
        self._loaded.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(target: T) -> T:
            self.add(name, target)
            return target

        return decorate

    def __getitem__(self, name: str) -> T:
        if name not in self._loaded:
            if name not in self._entries:
                raise self.error(f"unknown {self.kind} {name!r}; choose from {', '.join(self)}")
            target = self._entries[name]
            if isinstance(target, str):
                module, _, attribute = target.partition(":")
                target = getattr(import_module(module), attribute)
            self._loaded[name] = target
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, default: T | None = None) -> T | None:
        # Mapping.get expects a KeyError from [], which here is the kind's own error.
        return self[name] if name in self else default  # noqa: SIM401

"""A bounded cache of validated fhir.resources models, keyed by the resource's canonical JSON.

Why: fhir.resources validation is the largest single cost of a hook call (40-470 us per relevant
resource), and the same resources arrive again and again: a chart re-opened, order-select followed
by order-sign, every clinician who opens the same patient. A resource whose JSON is byte-for-byte the
same (after sorting keys) validates to the same model, so the model is kept and handed out again.

A hit must never leak state between requests, so cached models are deeply read-only: every model
in the tree gets a read-only subclass of its own class (`isinstance` still holds; assigning or
deleting an attribute raises TypeError), and every list becomes a `ReadOnlyList` whose mutators
raise. Readers notice nothing; a future writer fails loudly in the tests instead of quietly changing
the next patient's answer. A model that needs changing must be validated again from its JSON.

Not cached: a resource whose canonical JSON contains `null` (orjson writes a NaN from a lenient
JSON parser as null, so the two could share a key) and resources that fail validation (rare; their
error is reported per request). The cache holds at most `max_size` models (SPINECDS_MODEL_CACHE_SIZE,
0 turns it off), least recently used out first; one lock guards it (worker threads share it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from pydantic import BaseModel

DEFAULT_MAX_SIZE = 2048


class ReadOnlyList(list):
    """A list whose mutators raise; pydantic serialises it as the list it is."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("this list belongs to a cached FHIR model shared by requests: read-only")

    append = extend = insert = remove = pop = clear = sort = reverse = _read_only
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> ReadOnlyList:
        return ReadOnlyList(deepcopy(item, memo) for item in self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadOnlyList, (list(self),))


class _ReadOnlyModel:
    """Mixed in front of a model class: no attribute can be set or deleted."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        # fhir.resources' model_dump keeps a serialisation flag on the instance: harmless, allowed.
        if name.startswith("__fhir_"):
            super().__setattr__(name, value)
            return
        raise TypeError(f"{type(self).__name__} is a cached FHIR model shared by requests: read-only")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is a cached FHIR model shared by requests: read-only")


_read_only_classes: dict[type, type] = {}
_classes_lock = threading.Lock()


def _read_only_class(cls: type) -> type:
    read_only = _read_only_classes.get(cls)
    if read_only is None:
        with _classes_lock:
            read_only = _read_only_classes.get(cls)
            if read_only is None:
                # type.__new__ skips pydantic's metaclass (which would rebuild the schema, ~20 ms per
                # class): the subclass inherits its parent's validator and serializer unchanged.
                namespace = {"__module__": cls.__module__, "__qualname__": f"ReadOnly{cls.__qualname__}"}
                read_only = type.__new__(type(cls), f"ReadOnly{cls.__name__}", (_ReadOnlyModel, cls), namespace)
                _read_only_classes[cls] = read_only
    return read_only


def freeze(value: Any) -> Any:
    """Make a validated model tree read-only in place (lists replaced); returns the value."""
    if isinstance(value, BaseModel):
        fields = value.__dict__
        for name, item in fields.items():
            frozen = freeze(item)
            if frozen is not item:
                fields[name] = frozen
        if not isinstance(value, _ReadOnlyModel):
            object.__setattr__(value, "__class__", _read_only_class(type(value)))
        return value
    if isinstance(value, list) and not isinstance(value, ReadOnlyList):
        return ReadOnlyList(freeze(item) for item in value)
    return value


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    uncacheable: int
    size: int
    max_size: int

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class ModelCache:
    def __init__(self, max_size: int = DEFAULT_MAX_SIZE):
        self.max_size = max_size
        self._entries: OrderedDict[tuple[type, bytes], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._uncacheable = 0

    def resize(self, max_size: int) -> None:
        with self._lock:
            self.max_size = max_size
            while len(self._entries) > max(max_size, 0):
                self._entries.popitem(last=False)

    def validate(self, model: type[BaseModel], raw: dict[str, Any]) -> Any:
        """`model.model_validate(raw)`, read-only, from the cache when the same JSON was seen before.
        Raises what model_validate raises."""
        if self.max_size <= 0:
            return model.model_validate(raw)
        try:
            canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            canonical = b"null"  # not plain JSON: validate without the cache
        if b"null" in canonical:
            self._uncacheable += 1
            return model.model_validate(raw)
        key = (model, canonical)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return cached
        validated = freeze(model.model_validate(raw))
        with self._lock:
            self._misses += 1
            self._entries[key] = validated
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
        return validated

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, self._uncacheable, len(self._entries), self.max_size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._hits = self._misses = self._uncacheable = 0


MODEL_CACHE = ModelCache()

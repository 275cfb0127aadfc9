"""The bounds by name: :data:`BOUNDS`, filled by :func:`register`, read by :func:`get_bound`.

``certify(..., method=name)``, the ``--method`` choices of ``certsdp certify`` and any other list
of methods come from :data:`BOUNDS`; nothing else enumerates the bounds. A bound module registers
its class with the :func:`register` decorator when it is imported, and ``certsdp/bounds/__init__.py``
imports every bound module, so ``import certsdp.bounds`` fills the registry.
"""

from __future__ import annotations

from certsdp.bounds.base import Bound
from certsdp.errors import InputError

#: method name -> bound class, in registration order (the order of ``--method``'s choices)
BOUNDS: dict[str, type[Bound]] = {}


def register(cls: type[Bound]) -> type[Bound]:
    """Class decorator: add the :class:`Bound` subclass ``cls`` to :data:`BOUNDS` under ``cls.name``.

    Raises ``TypeError`` for a class that is not a bound or lacks a ``name``/``description``, and
    ``ValueError`` if another class already holds that name (these are programming errors).
    """
    if not (isinstance(cls, type) and issubclass(cls, Bound)):
        raise TypeError(f"only Bound subclasses can be registered, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or not isinstance(getattr(cls, "description", None), str):
        raise TypeError(f"{cls.__name__} needs a non-empty str 'name' and a str 'description'")
    if name in BOUNDS and BOUNDS[name] is not cls:
        raise ValueError(f"bound name {name!r} is taken by {BOUNDS[name].__qualname__}")
    BOUNDS[name] = cls
    return cls


def get_bound(name: str) -> Bound:
    """A new instance of the bound registered as ``name``; :class:`InputError` if there is none."""
    cls = BOUNDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InputError(f"unknown method {name!r}; choose one of {', '.join(BOUNDS)}")
    return cls()

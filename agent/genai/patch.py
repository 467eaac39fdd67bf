"""Reversible attribute patching for the LLM client wrappers.

Instrumenting replaces a few methods (on SDK classes, or on one client instance); uninstrumenting
must give back the very same objects, and instrumenting twice must not wrap twice. Each wrapper
carries its original under :data:`ORIGINAL`, which is how both rules are kept without a registry
that could drift from what is actually installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

ORIGINAL = "__otel_downstream_original__"

_lock = threading.Lock()


def wrap_attribute(owner: Any, name: str, make: Callable[[Any], Callable[..., Any]]) -> bool:
    """Replace ``owner.name`` with ``make(original)``; False when absent or already wrapped.

    On a class the original is the plain function from the class body (so ``self`` is passed
    through); on an instance it is the bound method, stored in the instance ``__dict__``.
    """
    with _lock:
        if isinstance(owner, type):
            original = owner.__dict__.get(name)
            if original is None:
                original = getattr(owner, name, None)
        else:
            original = getattr(owner, name, None)
        if original is None or not callable(original) or hasattr(original, ORIGINAL):
            return False
        wrapper = make(original)
        setattr(wrapper, ORIGINAL, (original, name in vars(owner)))
        setattr(owner, name, wrapper)
        return True


def unwrap_attribute(owner: Any, name: str) -> bool:
    """Put back what :func:`wrap_attribute` replaced; False when ``owner.name`` is not our wrapper."""
    with _lock:
        current = vars(owner).get(name)
        saved = getattr(current, ORIGINAL, None)
        if saved is None:
            return False
        original, was_own = saved
        if was_own and isinstance(owner, type):
            setattr(owner, name, original)
        elif isinstance(owner, type):
            delattr(owner, name)
        else:
            # An instance never owned the bound method: dropping ours re-exposes the class's.
            delattr(owner, name)
            if was_own:
                setattr(owner, name, original)
        return True

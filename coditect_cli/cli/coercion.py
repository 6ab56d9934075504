"""Cheap coercion of plain command-line values, so a short command does not import pydantic for them.

typer (0.2x) turns every parameter's value into its annotated type through a pydantic ``TypeAdapter`` built
the first time the parameter is processed, even when the value is absent. Building those adapters imports
pydantic's validation stack and costs more than everything else a short read-only command such as
``coditect streams status`` does (tens of milliseconds against its work of a few). Most of our parameters are
``str``, ``bool`` or ``int``: their values arrive from the parser already of that type (or as plain decimal
digits), and the adapter would hand them back unchanged. :func:`cheap_coercion` gives such parameters a
coercion that returns those values as they are and hands every other value (and every other type: paths,
choices, parsers, ranged numbers) to typer's own adapter, built then, so errors read exactly as typer's.

It relies on typer's parameter internals (``_TyperParameter._runtime_param``, ``type_descriptor``); on a typer
without them it does nothing, and typer coerces as it always does.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_DIGITS = re.compile(r"-?[0-9]{1,18}")
_PLAIN = (str, bool, int)


def cheap_coercion() -> None:
    """Make every typer parameter of this process start with the cheap coercion (see the module doc).

    typer asks a parameter for its coercion through ``get_runtime_param`` (building typer's own when there is
    none yet); this hands out the cheap one instead. Parameters click makes late (``--help``) get it too.
    """
    runtime = _runtime_param_class()
    if runtime is None:
        return
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return
    if getattr(_TyperParameter, "_coditect_cheap", False) or not hasattr(
        _TyperParameter, "get_runtime_param"
    ):
        return

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            self._runtime_param = runtime(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
        return self._runtime_param

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010 - typer's own method
    setattr(_TyperParameter, "_coditect_cheap", True)  # noqa: B010 - not typer's attribute


def _plain(descriptor: Any) -> bool:
    """Whether typer's adapter would hand a value already of the annotated type back unchanged."""
    info = descriptor.parameter_info
    return (
        descriptor.annotation in _PLAIN
        and descriptor.file_annotation is None
        and getattr(info, "parser", None) is None
        and getattr(info, "min", None) is None
        and getattr(info, "max", None) is None
    )


@functools.cache
def _runtime_param_class() -> Any:
    """The cheap ``RuntimeParam`` subclass (made once), or None when this typer has no such layer."""
    try:
        from typer import _coercion
    except ImportError:  # an older typer: click's own types coerce, no pydantic involved
        return None
    base: Any = getattr(_coercion, "RuntimeParam", None)
    build: Any = getattr(_coercion, "build_runtime_param", None)
    if base is None or build is None:
        return None

    class PlainRuntimeParam(base):  # type: ignore[misc]
        """An absent value, or a value already of a plain parameter's type, passes as it is (typer's
        ``coerce`` answers an absent one before asking this); anything else goes to typer's adapter."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.annotation
            if _plain(param.type_descriptor):
                if type(value) is kind:
                    return value
                if kind is int and isinstance(value, str) and _DIGITS.fullmatch(value):
                    return int(value)
            full = build(param.type_descriptor)
            param._runtime_param = full  # the next value of this parameter goes straight to typer's own
            return full._coerce_value(value, param=param, ctx=ctx)

    return PlainRuntimeParam

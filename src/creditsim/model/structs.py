"""The two structures compiled code takes: the parameters and the state, StructRefs of named tuples of arrays.

Parameters and state are declared as ``NamedTuple`` classes whose fields are annotated with their numba type
(``Annotated[np.ndarray, FLOAT_1]``), or with another such class (a part: the firms' parameters, a guarantor's
books). The two outermost classes, :class:`~creditsim.model.params.Params` and :class:`~creditsim.model.state.State`,
are registered (:func:`register`) as StructRefs: passed by reference, so that a function's cost to compile and to
call does not grow with everything they hold. Compiled code reads a field where it uses it,
``p.firms.pd[segment, grade]`` or ``s.borrowers[slot]``, and passes ``p`` and ``s`` (never a part: a named tuple is
passed and bound by value, field by field).

:func:`compiled` makes the StructRef of a named tuple. Its arrays are *borrowed*: the compiled code does not count
references to them, because the Python object the StructRef is attached to owns them for as long as the StructRef
lives. Numba counts a reference with an atomic instruction each time an array is read out of a structure or passed
on; in loops that touch a borrower's row at random, each such instruction waits for the memory reads in flight,
and threads sharing the parameters contend for the same counter. Compiled code must therefore never return one of
these arrays to Python (Python reads the named tuple the StructRef was made from: the arrays are the same).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple, get_type_hints

import numba
import numpy as np
from llvmlite import ir as llvmir
from numba import njit, types
from numba.core import cgutils
from numba.core.datamodel import models
from numba.core.datamodel.registry import default_manager
from numba.experimental import structref
from numba.extending import NativeValue, box, intrinsic, register_model, unbox
from numba.np.arrayobj import make_array

__all__ = ["array", "register", "compiled", "numba_type", "borrowed", "BorrowedArray", "Structure", "FLOAT_1", "FLOAT_2", "FLOAT_3", "INT_1", "INT_2",
           "INT_3", "BOOL_1", "FROZEN_FLOAT_1", "FROZEN_FLOAT_2", "FROZEN_INT_1", "FROZEN_INT_3", "FROZEN_BOOL_1", "FROZEN_BOOL_2", "INT",
           "FLOAT", "BOOL"]


def array(dtype: Any, ndim: int = 1, frozen: bool = False) -> types.Array:
    """The numba type of a C-contiguous array (read-only when ``frozen``)."""
    return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C", readonly=frozen)


INT, FLOAT, BOOL = types.int64, types.float64, types.boolean
FLOAT_1, FLOAT_2, FLOAT_3 = array(np.float64), array(np.float64, 2), array(np.float64, 3)
INT_1, INT_2, INT_3 = array(np.int64), array(np.int64, 2), array(np.int64, 3)
BOOL_1 = array(np.bool_)
FROZEN_FLOAT_1, FROZEN_FLOAT_2 = array(np.float64, 1, True), array(np.float64, 2, True)
FROZEN_INT_1, FROZEN_INT_3 = array(np.int64, 1, True), array(np.int64, 3, True)
FROZEN_BOOL_1, FROZEN_BOOL_2 = array(np.bool_, 1, True), array(np.bool_, 2, True)


class Structure(structref.StructRefProxy):
    """A StructRef in Python: opaque; read the arrays through the named tuple it was made from (``.value``)."""


class BorrowedArray(types.Array):
    """The numba type of an array whose memory Python owns (see the module docstring): the same layout as an array,
    but the compiled code counts no references to it."""

    def __init__(self, dtype: types.Type, ndim: int, layout: str, readonly: bool = False) -> None:
        kind = "readonly borrowed array" if readonly else "borrowed array"
        super().__init__(dtype, ndim, layout, readonly=readonly, name=f"{kind}({dtype}, {ndim}d, {layout})")


@register_model(BorrowedArray)
class _BorrowedArrayModel(models.StructModel):
    """An array's data model with its memory-info pointer as a plain pointer, which numba does not count."""

    def __init__(self, dmm, fe_type):
        members = [("meminfo", types.voidptr), ("parent", types.pyobject), ("nitems", types.intp), ("itemsize", types.intp),
                   ("data", types.CPointer(fe_type.dtype)), ("shape", types.UniTuple(types.intp, fe_type.ndim)),
                   ("strides", types.UniTuple(types.intp, fe_type.ndim))]
        super().__init__(dmm, fe_type, members)


def _borrowed_type(values: types.Array) -> BorrowedArray:
    return BorrowedArray(values.dtype, values.ndim, values.layout, readonly=not values.mutable)


@intrinsic
def borrowed(typingctx, values):
    """The same array as a :class:`BorrowedArray`: no reference counted, valid while the array it was made from
    lives."""
    if not isinstance(values, types.Array) or isinstance(values, BorrowedArray):
        return None
    result = _borrowed_type(values)

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        view = cgutils.create_struct_proxy(signature.return_type)(context, builder)
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(view, name, getattr(source, name))
        return view._getvalue()

    return result(values), codegen


@intrinsic
def prefetch(typingctx, values, index):
    """Ask the processor to bring ``values[index]`` (a 1-d array) into its caches, to be read soon; no effect on
    results. The event loops prefetch the rows of borrowers a few places ahead, which hides most of the memory
    latency of rows scattered over a province-sized table."""
    if not isinstance(values, types.Array) or values.ndim != 1 or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        source = context.make_array(array_type)(context, builder, args[0])
        position = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = cgutils.get_item_pointer(context, builder, array_type, source, [position], wraparound=False)
        byte_pointer = builder.bitcast(pointer, llvmir.IntType(8).as_pointer())
        i32 = llvmir.IntType(32)
        function_type = llvmir.FunctionType(llvmir.VoidType(), [byte_pointer.type, i32, i32, i32])
        function = builder.module.declare_intrinsic("llvm.prefetch", [byte_pointer.type], function_type)
        builder.call(function, [byte_pointer, i32(0), i32(3), i32(1)])  # read, keep in every cache level, data
        return context.get_dummy_value()

    return types.void(values, index), codegen


_STRUCTS: dict[type, types.StructRef] = {}
_BUILDERS: dict[type, Any] = {}


def _is_part(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, tuple)


def _field_type(hint: Any) -> types.Type:
    """The numba type a field holds in compiled code: a part's named tuple type, a borrowed array, or a number."""
    if _is_part(hint):
        return numba_type(hint)
    declared = hint.__metadata__[0]
    return _borrowed_type(declared) if isinstance(declared, types.Array) else declared


def numba_type(cls: type) -> types.Type:
    """The numba type of a named tuple class with annotated fields as compiled code holds it (arrays borrowed; a
    homogeneous named tuple type when every field has one type, as numba types such a value), or a registered
    class's StructRef type."""
    if cls in _STRUCTS:
        return _STRUCTS[cls]
    hints = get_type_hints(cls, include_extras=True)
    fields = [_field_type(hints[name]) for name in cls._fields]
    if len(set(fields)) == 1:
        return types.NamedUniTuple(fields[0], len(fields), cls)
    return types.NamedTuple(fields, cls)


def _borrowing_source(cls: type, name: str) -> str:
    """Source of an expression that rebuilds the named tuple ``name`` of class ``cls`` with borrowed arrays."""
    hints = get_type_hints(cls, include_extras=True)
    parts = []
    for field in cls._fields:
        hint = hints[field]
        if _is_part(hint):
            parts.append(_borrowing_source(hint, f"{name}.{field}"))
        elif isinstance(hint.__metadata__[0], types.Array):
            parts.append(f"borrowed({name}.{field})")
        else:
            parts.append(f"{name}.{field}")
    return f"{cls.__name__}({', '.join(parts)})"


def register(cls: type[NamedTuple]) -> type[NamedTuple]:
    """Make a named tuple class the model of a StructRef (a class decorator): the StructRef type with the class's
    fields in order, and a compiled, cached constructor that borrows every array."""
    hints = get_type_hints(cls, include_extras=True)
    fields = [(name, _field_type(hints[name])) for name in cls._fields]
    struct_class = type(f"{cls.__name__}Struct", (types.StructRef,), {"__module__": __name__})
    setattr(sys.modules[__name__], struct_class.__name__, struct_class)
    default_manager.register(struct_class, _UncountedStructRefModel)
    structref.define_attributes(struct_class)
    _define_boxing(struct_class)
    struct = struct_class(fields)
    _STRUCTS[cls] = struct
    namespace: dict[str, Any] = {"structref": structref, "STRUCT": struct, "borrowed": borrowed, "__name__": __name__}
    lines = [f"def build_{cls.__name__}({', '.join(cls._fields)}):", "    out = structref.new(STRUCT)"]
    for name in cls._fields:
        hint = hints[name]
        if _is_part(hint):
            namespace[hint.__name__] = hint
            for inner in _nested(hint):
                namespace[inner.__name__] = inner
            lines.append(f"    out.{name} = {_borrowing_source(hint, name)}")
        elif isinstance(hint.__metadata__[0], types.Array):
            lines.append(f"    out.{name} = borrowed({name})")
        else:
            lines.append(f"    out.{name} = {name}")
    source = "\n".join([*lines, "    return out", ""])
    exec(compile(source, __file__, "exec"), namespace)  # the source is written here, from the class's field names
    _BUILDERS[cls] = njit(cache=True, nogil=True)(namespace[f"build_{cls.__name__}"])
    return cls


class _UncountedStructRefModel(models.StructModel):
    """A StructRef's data model with its memory-info pointer as a plain pointer, which numba does not count: the
    Python object a StructRef is boxed into owns it (see :func:`_define_boxing`)."""

    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, [("meminfo", types.voidptr)])


def _define_boxing(struct_class: type) -> None:
    """Box a StructRef into a :class:`Structure` that owns its one reference, and unbox one without taking a
    reference: the caller holds the Python object for as long as the compiled call runs."""

    @box(struct_class)
    def box_structure(typ, value, c):
        meminfo = cgutils.create_struct_proxy(typ)(c.context, c.builder, value=value).meminfo
        boxed_meminfo = c.box(types.MemInfoPointer(types.voidptr), meminfo)  # takes over the reference made by new()
        constructor = c.pyapi.unserialize(c.pyapi.serialize_object(Structure._numba_box_))
        type_object = c.pyapi.unserialize(c.pyapi.serialize_object(typ))
        result = c.pyapi.call_function_objargs(constructor, [type_object, boxed_meminfo])
        for obj in (constructor, type_object, boxed_meminfo):
            c.pyapi.decref(obj)
        return result

    @unbox(struct_class)
    def unbox_structure(typ, obj, c):
        meminfo_object = c.pyapi.object_getattr_string(obj, "_meminfo")
        meminfo = c.pyapi.nrt_meminfo_from_pyobject(meminfo_object)  # takes a reference: give it back at once
        c.context.nrt.decref(c.builder, types.MemInfoPointer(types.voidptr), meminfo)
        c.pyapi.decref(meminfo_object)
        structure = cgutils.create_struct_proxy(typ)(c.context, c.builder)
        structure.meminfo = meminfo
        return NativeValue(structure._getvalue())


def _nested(cls: type) -> list[type]:
    hints = get_type_hints(cls, include_extras=True)
    out = []
    for name in cls._fields:
        if _is_part(hints[name]):
            out += [hints[name], *_nested(hints[name])]
    return out


def compiled(value: NamedTuple) -> Structure:
    """The StructRef of a registered named tuple, sharing (and borrowing) its arrays; the StructRef keeps ``value``
    alive as its ``.value``."""
    struct = _BUILDERS[type(value)](*value)
    struct.value = value
    return struct

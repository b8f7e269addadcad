"""The only format in which a student's process talks to the grader: JSON with NumPy arrays in .npy form.

Never pickle: unpickling bytes that a submission produced would run its code in the grader.
``decode`` accepts None, bool, int, float, str, lists, tuples, dicts with string keys and numeric
NumPy arrays (``np.load(..., allow_pickle=False)`` refuses object arrays), nothing else.
"""
from __future__ import annotations

import base64
import io
import json

import numpy as np

MAX_DEPTH = 32


class WireError(ValueError):
    """A message from the student's process is malformed (or not one of the allowed types)."""


def to_jsonable(value, depth: int = 0):
    if depth > MAX_DEPTH:
        raise WireError("the result is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"__num__": repr(value)} if isinstance(value, float) else value
    if isinstance(value, np.generic):
        return to_jsonable(np.asarray(value), depth + 1)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise WireError(f"an array of dtype {value.dtype} is not a numeric result")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)  # keeps 0-d arrays 0-d
        return {"__nd__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(value, (list, tuple)):
        items = [to_jsonable(v, depth + 1) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("result dicts must have string keys")
        return {"__dict__": [[k, to_jsonable(v, depth + 1)] for k, v in value.items()]}
    raise WireError(f"a {type(value).__name__} is not a result the grader accepts (return NumPy arrays and numbers)")


def from_jsonable(value, depth: int = 0):
    if depth > MAX_DEPTH:
        raise WireError("the result is nested too deeply")
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):  # plain JSON floats are not produced by to_jsonable, but are harmless
        return value
    if isinstance(value, list):
        return [from_jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, body), = value.items()
        if tag == "__num__" and isinstance(body, str):
            return float(body)
        if tag == "__nd__" and isinstance(body, str):
            try:
                array = np.load(io.BytesIO(base64.b64decode(body, validate=True)), allow_pickle=False)
            except Exception as error:  # noqa: BLE001 - any malformed array is the submission's problem
                raise WireError(f"a malformed array ({error})") from None
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
                raise WireError("a non-numeric array")
            return array
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(from_jsonable(v, depth + 1) for v in body)
        if tag == "__dict__" and isinstance(body, list):
            out = {}
            for item in body:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise WireError("a malformed dict")
                out[item[0]] = from_jsonable(item[1], depth + 1)
            return out
    raise WireError("an unknown value in the result")


def encode(value) -> bytes:
    return json.dumps(to_jsonable(value)).encode()


def decode(data: bytes):
    try:
        return from_jsonable(json.loads(data))
    except (ValueError, RecursionError) as error:
        if isinstance(error, WireError):
            raise
        raise WireError(f"the result is not valid JSON ({error})") from None

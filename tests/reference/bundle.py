"""Reader/writer for the "tensor bundle" format used by the parity tests (numpy only).

A bundle is a directory holding two files:

  index.json  {"tensors": [{"name": str, "dtype": "float32" | "int64", "shape": [int, ...],
                            "offset": int, "nbytes": int}, ...],
               "meta": {...free-form JSON object...}}
  data.bin    the tensors' raw bytes, little-endian, C-contiguous (row-major), tensor after tensor;
              each tensor occupies data.bin[offset : offset + nbytes], nbytes = prod(shape) * itemsize
              (itemsize 4 for float32, 8 for int64). A scalar has shape [] and holds one element.

The writer lays the tensors out back to back in the order given, starting at offset 0, with no padding;
readers must nevertheless use "offset" and not assume that layout.
"""

import json
import os

import numpy as np

_DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8")}


def _dtype_name(arr):
    if arr.dtype == np.float32:
        return "float32"
    if arr.dtype == np.int64:
        return "int64"
    raise TypeError("bundle supports float32 and int64 only, got %s" % arr.dtype)


def write_bundle(out_dir, tensors, meta=None):
    """Write a bundle. tensors: iterable of (name, array) pairs or a dict (insertion order kept).

    Arrays may be numpy arrays or anything numpy.asarray accepts (e.g. CPU torch tensors via .numpy()).
    """
    os.makedirs(out_dir, exist_ok=True)
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    names = set()
    index = []
    offset = 0
    with open(os.path.join(out_dir, "data.bin"), "wb") as f:
        for name, arr in items:
            if name in names:
                raise ValueError("duplicate tensor name %r" % name)
            names.add(name)
            arr = np.asarray(arr)
            dt = _dtype_name(arr)
            data = np.ascontiguousarray(arr, dtype=_DTYPES[dt]).tobytes(order="C")
            f.write(data)
            index.append({"name": name, "dtype": dt, "shape": [int(s) for s in arr.shape],
                          "offset": offset, "nbytes": len(data)})
            offset += len(data)
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump({"tensors": index, "meta": meta or {}}, f, indent=1)


def read_bundle(in_dir):
    """Read a bundle. Returns (tensors, meta): an ordered dict name -> numpy array, and the meta dict."""
    with open(os.path.join(in_dir, "index.json")) as f:
        index = json.load(f)
    with open(os.path.join(in_dir, "data.bin"), "rb") as f:
        blob = f.read()
    tensors = {}
    for t in index["tensors"]:
        dt = _DTYPES[t["dtype"]]
        shape = tuple(t["shape"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dt.itemsize != t["nbytes"]:
            raise ValueError("tensor %r: nbytes %d does not match shape %s" % (t["name"], t["nbytes"], shape))
        raw = blob[t["offset"]:t["offset"] + t["nbytes"]]
        if len(raw) != t["nbytes"]:
            raise ValueError("tensor %r runs past the end of data.bin" % t["name"])
        tensors[t["name"]] = np.frombuffer(raw, dtype=dt, count=count).reshape(shape).copy()
    return tensors, index.get("meta", {})

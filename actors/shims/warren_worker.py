"""warren's Python worker: runs a user's function for a warren process pool.

Started by warren as ``python -u warren_worker.py``; speaks the protocol of docs/process-protocol.md on
file descriptor 3 (4-byte big-endian length, then UTF-8 JSON, both ways). stdout and stderr stay the
user's: warren logs each of their lines, tagged with this worker. Standard library only.

User code imports ``warren`` for ``warren.Reject``: raising it parks the message at once (reason
``rejected``) instead of retrying it.
"""

import importlib.util
import io
import json
import os
import struct
import sys
import traceback
import types

PROTOCOL = 2
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_TRACEBACK = 4000


class Reject(Exception):
    """Raise ``warren.Reject("why")`` to park a message at once (reason ``rejected``), without retries."""


# `import warren` in user code finds this module's API, whatever the working directory.
_api = types.ModuleType("warren")
_api.Reject = Reject
_api.PROTOCOL = PROTOCOL
sys.modules["warren"] = _api


def _read_exact(stream, n):
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def read_frame(stream):
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if length > MAX_FRAME_BYTES:
        raise ValueError("frame of %d bytes is over the limit" % length)
    payload = _read_exact(stream, length)
    if payload is None:
        return None
    return json.loads(payload.decode("utf-8"))


def write_raw(stream, payload):
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


def write_frame(stream, message):
    write_raw(stream, json.dumps(message, separators=(",", ":")).encode("utf-8"))


_SHIM = os.path.abspath(__file__)


def _own(tb):
    """Whether a traceback entry is this worker's or the import machinery's, not the user's."""
    name = tb.tb_frame.f_code.co_filename
    return name.startswith("<frozen importlib") or os.path.abspath(name) == _SHIM


def describe(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _own(tb):  # start at the user's code
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > MAX_TRACEBACK:
        text = "..." + text[-MAX_TRACEBACK:]
    return {"type": type(exc).__name__, "message": str(exc), "traceback": text}


def _plain(value):
    """JSON for what numpy, pandas and friends return: their scalars and arrays know how."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError("%s is not JSON serializable" % type(value).__name__)


# One encoder for every result: json.dumps with arguments builds a new encoder at each call, which
# cost more than the bench's whole model did.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_plain).encode


def encode_result(result):
    """One item's result as JSON text; what cannot be JSON is an invalid output, not an exception."""
    try:
        return _ENCODE(result)
    except (TypeError, ValueError, RecursionError) as exc:
        return _ENCODE({"invalid": "the result is not JSON: %s" % exc})


def encode_results(results):
    """A call's results as one JSON array; only when one cannot be JSON is each encoded on its own."""
    try:
        return _ENCODE(results)
    except (TypeError, ValueError, RecursionError):
        return "[%s]" % ",".join(encode_result(r) for r in results)


def load(script, handler_name):
    directory = os.path.dirname(os.path.abspath(script))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(script))[0]
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load %s as a Python module" % script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def meta_of(item, shared):
    """The item's ``meta``: the call's shared metadata it names, with its own fields over it."""
    own = item.get("meta") or {}
    index = item.get("shared")
    if index is None:
        return own
    merged = dict(shared[index])
    merged.update(own)
    return merged


def run_item(handler, item, shared):
    """One item's result: {"ok": what the function returned}, {"reject": why} or {"error": ...}."""
    try:
        return {"ok": handler(item.get("body"), meta_of(item, shared))}
    except Reject as exc:
        return {"reject": str(exc) or "rejected"}
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported, not fatal
        return {"error": describe(exc)}


def main():
    channel_in = io.open(3, "rb", buffering=1 << 16, closefd=False)
    channel_out = io.open(3, "wb", buffering=1 << 16, closefd=False)
    init = read_frame(channel_in)
    if init is None:
        return 0
    if init.get("t") != "init" or init.get("protocol") != PROTOCOL:
        write_frame(channel_out, {"t": "fatal", "stage": "protocol", "error": {
            "type": "ProtocolError", "message": "this worker speaks protocol %d, got %r" % (PROTOCOL, init.get("protocol")),
            "traceback": ""}})
        return 2
    script = init["script"]
    handler_name = init.get("handler") or "score"
    stage = "import"
    try:
        module = load(script, handler_name)
        stage = "handler"
        handler = getattr(module, handler_name, None)
        if not callable(handler):
            raise AttributeError("%s defines no function %s(body, meta)" % (script, handler_name))
        stage = "init"
        setup = getattr(module, "init", None)
        if callable(setup):
            setup(init.get("config") or {})
    except BaseException as exc:  # noqa: BLE001 - SystemExit in a script is a failed start too
        write_frame(channel_out, {"t": "fatal", "stage": stage, "error": describe(exc)})
        return 2
    write_frame(channel_out, {
        "t": "ready", "protocol": PROTOCOL, "pid": os.getpid(),
        "runtime": "python %d.%d.%d" % sys.version_info[:3],
    })
    while True:
        message = read_frame(channel_in)
        if message is None or message.get("t") == "stop":
            return 0
        if message.get("t") != "call":
            continue
        shared = message.get("shared") or []
        results = [run_item(handler, item, shared) for item in message.get("items", [])]
        payload = '{"t":"result","id":%d,"results":%s}' % (int(message["id"]), encode_results(results))
        write_raw(channel_out, payload.encode("utf-8"))


if __name__ == "__main__":
    sys.exit(main())

"""The ceiling: a bare loop behind the same pipe (fd 3, the same frames) doing the same arithmetic, with
no handshake, no error handling and no user-function call."""

import io
import json
import struct

inp = io.open(3, "rb", buffering=1 << 16, closefd=False)
out = io.open(3, "wb", buffering=1 << 16, closefd=False)
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    (length,) = struct.unpack(">I", head)
    frame = json.loads(inp.read(length))
    results = [{"ok": {"type": "scored", "body": {"n": i["body"]["n"], "score": i["body"]["x"] * 0.5 + 0.1}}}
               for i in frame["items"]]
    data = json.dumps({"t": "result", "id": frame["id"], "results": results}).encode()
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()

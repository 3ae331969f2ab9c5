#!/usr/bin/env python3
"""Times Meta's C++ PDQ through the PyPI binding `pdqhash`, with Pillow decoding.

Run by `hashscan-bench` on the same JPEGs it times itself; it can also be run
by hand:

    python3 pdqhash_bench.py MANIFEST.json [--reps N]

MANIFEST.json is {"sizes": [{"label": "...", "files": ["a.jpg", ...]}, ...]}.
Prints one JSON object on stdout with per-image times in seconds:

* decode_hash: bytes already in memory -> Image.open(BytesIO).convert("RGB")
  -> numpy array -> pdqhash.compute (what a Python crawler would do);
* hash_only: pdqhash.compute on arrays decoded beforehand;
* draft: like decode_hash but with Pillow's JPEG draft mode (libjpeg-turbo
  DCT scaling) at the same scale hashscan's fast mode uses; for context only.

Each time is a pair [wall-clock seconds, thread CPU seconds]; CPU time is
robust to other processes sharing the core. Also printed: each file's pdqhash hex and quality (from decode_hash), so the caller can
check both sides hashed the same pixels. File reading is not timed on either
side. Runs single-threaded (pin it with taskset, as the caller does).
"""

import io
import json
import sys
import time

MISSING = (
    "pdqhash_bench.py needs the Python modules pdqhash, Pillow and numpy: "
    "pip install pdqhash pillow numpy"
)

try:
    import numpy as np
    import pdqhash
    from PIL import Image, features
    import PIL
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"{MISSING} ({e})", file=sys.stderr)
    sys.exit(3)


def to_hex(vec):
    return "%064x" % int("".join(str(int(b)) for b in vec), 2)


def decode(data):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def decode_draft(data, scale):
    with Image.open(io.BytesIO(data)) as im:
        if scale > 1:
            im.draft("RGB", (im.width // scale, im.height // scale))
        return np.asarray(im.convert("RGB"))


def main():
    args = sys.argv[1:]
    reps = 3
    if "--reps" in args:
        i = args.index("--reps")
        reps = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(args[0]) as f:
        manifest = json.load(f)

    out = {
        "versions": {
            "python": sys.version.split()[0],
            "pillow": PIL.__version__,
            "numpy": np.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "pdqhash": _pdqhash_version(),
        },
        "sizes": {},
        "hashes": {},
    }
    wall, cpu = time.perf_counter, time.thread_time
    for size in manifest["sizes"]:
        files = size["files"]
        scales = size.get("scales", [1] * len(files))
        blobs = [open(p, "rb").read() for p in files]
        # Warm-up: one pass of each kind.
        for b in blobs:
            pdqhash.compute(decode(b))
        arrays = [decode(b) for b in blobs]
        dh, ho, dr = [], [], []
        for _ in range(reps):
            for path, b, arr, k in zip(files, blobs, arrays, scales):
                t, c = wall(), cpu()
                vec, q = pdqhash.compute(decode(b))
                dh.append([wall() - t, cpu() - c])
                out["hashes"][path] = [to_hex(vec), int(q)]
                t, c = wall(), cpu()
                pdqhash.compute(arr)
                ho.append([wall() - t, cpu() - c])
                t, c = wall(), cpu()
                pdqhash.compute(decode_draft(b, k))
                dr.append([wall() - t, cpu() - c])
        out["sizes"][size["label"]] = {"decode_hash": dh, "hash_only": ho, "draft": dr}
        del arrays
    json.dump(out, sys.stdout)


def _pdqhash_version():
    try:
        from importlib.metadata import version

        return version("pdqhash")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""faiss IndexBinaryMultiHash on the PDQ index benchmark's data.

Run by `cargo run --release -p hashscan-pdq-index --example bench`, which
writes the hashes (its index file) and the queries, then compares our result
counts with the ones printed here. Loads the same hashes, builds
`faiss.IndexBinaryMultiHash(256, 16, 16)` (16 tables of 16 bits: the same
slicing as our index) with `nflip = radius // 16` (the pigeonhole depth: 1
for radius 31), and times `range_search` on one thread.

faiss's binary range_search keeps distances *strictly below* its threshold,
so it is called with radius + 1 to return distance <= radius, as ours does.

Then times faiss's own linear scan, `IndexBinaryFlat.range_search`, on the
first queries: the strongest linear baseline at hand (its kernels use
AVX-512 VPOPCNTDQ where the CPU has it).

Prints one JSON line: build time, memory per hash, queries per second (wall
and this thread's CPU time, median of --repeats runs), the number of
results of every query, and the flat scan's queries per second.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

try:
    import faiss
    import numpy as np
except ImportError as e:  # never skip silently: the benchmark needs faiss
    sys.exit(f"faiss_bench.py: {e}; install with `pip install faiss-cpu numpy`")

MAGIC = b"HSPDQIX1"


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", required=True, help="the benchmark's index file")
    p.add_argument("--queries", required=True, help="raw 32-byte query hashes")
    p.add_argument("--radius", type=int, default=31)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--flat-queries", type=int, default=200, help="queries for IndexBinaryFlat (a linear scan)")
    a = p.parse_args()

    with open(a.index, "rb") as f:
        header = f.read(64)
    if header[:8] != MAGIC:
        sys.exit(f"faiss_bench.py: {a.index} is not a benchmark index file")
    n, _slices, off_hashes, _off_offsets, _off_ids = struct.unpack_from("<5Q", header, 8)
    xb = np.fromfile(a.index, dtype=np.uint8, count=32 * n, offset=off_hashes).reshape(n, 32)
    xq = np.fromfile(a.queries, dtype=np.uint8).reshape(-1, 32)

    faiss.omp_set_num_threads(1)
    nflip = a.radius // 16

    rss0 = rss_bytes()
    w0, c0 = time.perf_counter(), time.thread_time()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = nflip
    index.add(xb)
    build_wall, build_cpu = time.perf_counter() - w0, time.thread_time() - c0
    rss1 = rss_bytes()

    thresh = a.radius + 1  # faiss keeps distances < thresh
    index.range_search(xq[: min(100, len(xq))], thresh)  # warm-up
    walls, cpus = [], []
    lims = dists = None
    for _ in range(a.repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        lims, dists, _ids = index.range_search(xq, thresh)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.thread_time() - c0)
    counts = np.diff(lims).astype(int).tolist()
    if len(dists) and int(dists.max()) > a.radius:
        sys.exit("faiss_bench.py: faiss returned a distance above the radius")
    multihash_bytes = rss1 - rss0
    del index

    # faiss's linear scan (AVX-512 VPOPCNTDQ kernels where the CPU has them):
    # the strongest linear baseline, on the first --flat-queries queries.
    flat = faiss.IndexBinaryFlat(256)
    flat.add(xb)
    xf = xq[: a.flat_queries]
    flat.range_search(xf[:5], thresh)  # warm-up
    fwalls, fcpus = [], []
    for _ in range(a.repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        flims, _fd, _fi = flat.range_search(xf, thresh)
        fwalls.append(time.perf_counter() - w0)
        fcpus.append(time.thread_time() - c0)
    if np.diff(flims).astype(int).tolist() != counts[: len(xf)]:
        sys.exit("faiss_bench.py: IndexBinaryFlat and IndexBinaryMultiHash disagree")

    print(
        json.dumps(
            {
                "faiss_version": faiss.__version__,
                "n": int(n),
                "nflip": nflip,
                "build_wall_s": build_wall,
                "build_cpu_s": build_cpu,
                "rss_bytes_per_hash": multihash_bytes / n,
                "queries": len(xq),
                "qps_wall": len(xq) / statistics.median(walls),
                "qps_cpu": len(xq) / statistics.median(cpus),
                "counts": counts,
                "flat_queries": len(xf),
                "flat_qps_wall": len(xf) / statistics.median(fwalls),
                "flat_qps_cpu": len(xf) / statistics.median(fcpus),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Seeds of fuzz/alloc_ops.c: see the input format at the top of the harness.

Besides general mixes, one seed per root cause of the debug playbook that this harness is
meant to catch from its corpus alone (tests/regress/planted.sh plants each in turn):
  sll_userptr, magazine_userptr, double_offset      header mode (tc1-hdr)
  class_drift, remote_double_drain                  every mode (headerless + hint included)
  registry_late_unregister                          every mode
Each is named after its planted bug; with the bug planted, replaying the corpus aborts."""
import os

from seedlib import ROOT, u8, u16, write

(MALLOC, CALLOC, REALLOC, ALIGNED, FREE, FREE_REMOTE, WORKER_ALLOC, WORKER_EXIT, CHECK, FILL,
 BURST, TRIM, SYNC, FREE_ALL) = range(14)
TINY, MID, LARGE, BOUNDARY = range(4)
MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, ODD_ALIGN = range(4)
W_MALLOC, W_CALLOC, W_MEMALIGN = range(3)
FORWARD, REVERSE, EVEN_ODD, SHUFFLE, HALF_REMOTE, ALL_REMOTE = range(6)
B_MALLOC, B_CALLOC, B_MEMALIGN, B_MIXED = range(4)

KIB = 1024
TINY_MAX, MID_MAX = 1024, 256 * KIB


def size(n):
    """The 3-byte size argument decoding to n bytes (mid sizes rounded up to 1025 + 4k, large
    ones to 256 KiB + 1 + 64k: see mid() and large())."""
    if n <= TINY_MAX:
        return u8(TINY) + u16(n)
    if n <= MID_MAX:
        n = mid(n)
        assert n <= MID_MAX, n
        return u8(MID) + u16((n - TINY_MAX - 1) // 4)
    n = large(n)
    assert (n - MID_MAX - 1) // 64 < 65536, n
    return u8(LARGE) + u16((n - MID_MAX - 1) // 64)


def mid(n):
    """The mid size nearest above n that size() can express."""
    return n + (-(n - TINY_MAX - 1)) % 4


def large(n):
    return n + (-(n - MID_MAX - 1)) % 64


def boundary(cls, delta=0):
    """A class size (or tiny max, cls = 52, or slab max, cls = 53) plus delta in -1..1."""
    return u8(BOUNDARY) + u16(cls | (delta + 1) << 8)


def align_arg(a):
    """Alignment byte: 32..4096 without the high bit, else 8..4 MiB."""
    e = a.bit_length() - 1
    if 5 <= e <= 12:
        return e - 5
    assert 3 <= e <= 22
    return 0x80 | (e - 3)


def malloc(s, n):
    return u8(MALLOC) + u8(s) + size(n)


def calloc(s, n, split=0):
    return u8(CALLOC) + u8(s) + size(n) + u8(split)


def realloc(s, n, mode=0):
    return u8(REALLOC) + u8(s) + size(n) + u8(mode)


def aligned(s, fn, a, n):
    return u8(ALIGNED) + u8(s) + u8(fn) + u8(align_arg(a)) + size(n)


def free(s):
    return u8(FREE) + u8(s)


def free_remote(s, w):
    return u8(FREE_REMOTE) + u8(s) + u8(w)


def worker_alloc(s, w, n, fn=W_MALLOC, align_shift=0):
    return u8(WORKER_ALLOC) + u8(s) + u8(w) + u8(fn + 3 * align_shift) + size(n)


def worker_exit(w):
    return u8(WORKER_EXIT) + u8(w)


def check(s):
    return u8(CHECK) + u8(s)


def fill(s):
    return u8(FILL) + u8(s)


def burst(n, k, fn=B_MALLOC, order=FORWARD, arg=0, align_shift=0, raw_size=None):
    return (u8(BURST) + (raw_size if raw_size is not None else size(n)) + u16(k - 1)
            + u8(fn + 4 * align_shift) + u8(order) + u8(arg))


def trim():
    return u8(TRIM)


def sync():
    return u8(SYNC)


def free_all(worker=None):
    return u8(FREE_ALL) + u8(0 if worker is None else 2 * worker + 1)


def cat(*parts):
    return b"".join(parts)


seeds = {}

# ---- general mixes ------------------------------------------------------------------------

seeds["mixed-sizes"] = cat(
    *(malloc(i, n) for i, n in enumerate([0, 1, 8, 9, 16, 17, 100, 128, 129, 500, 1000, 1024])),
    *(malloc(16 + i, mid(n)) for i, n in enumerate([1025, 2000, 4096, 10 * KIB, 20000, 65 * KIB,
                                                   100 * KIB, 150 * KIB, 200 * KIB, 256 * KIB])),
    *(malloc(32 + i, large(n)) for i, n in enumerate([MID_MAX + 1, 300 * KIB, 1024 * KIB,
                                                     2048 * KIB, 3 * 1024 * KIB])),
    *(check(i) for i in range(40)), *(free(i) for i in range(0, 40, 2)),
    *(fill(i) for i in range(1, 40, 2)), *(check(i) for i in range(1, 40, 2)))

seeds["calloc"] = cat(
    *(calloc(i, n, split) for i, (n, split) in enumerate(
        [(0, 0), (0, 1), (1, 0), (24, 3), (100, 2), (1024, 5), (mid(5000), 4),
         (mid(70 * KIB), 7), (large(400 * KIB), 1), (large(2048 * KIB), 6)])),
    calloc(20, 10, 0xFF),
    # freed then calloc'd again at the same size: reused blocks must come back zeroed
    *(free(i) for i in range(10)),
    *(calloc(i, n, 0) for i, n in enumerate([0, 0, 1, 24, 100, 1024, mid(5000), mid(70 * KIB),
                                            large(400 * KIB), large(2048 * KIB)])))

seeds["realloc-chain"] = cat(
    malloc(0, 10),
    *(realloc(0, n) for n in [20, 100, 1000, mid(3000), mid(50 * KIB), large(300 * KIB),
                              large(2 * 1024 * KIB), mid(100 * KIB), 500, 16, 1]),
    realloc(0, 0, 3), realloc(0, 0, 3), realloc(0, 0, 2), realloc(1, 64, 1), realloc(1, 4096, 1),
    realloc(1, 0), realloc(2, 0), realloc(3, mid(40 * KIB)), realloc(3, 0, 2),
    aligned(4, MEMALIGN, 256, 300), realloc(4, 200, 3), realloc(4, mid(5000)),
    aligned(5, POSIX_MEMALIGN, 4096, 100), realloc(5, 60))

seeds["aligned"] = cat(
    *(aligned(i, i % 3, 1 << (3 + i), 100 + 37 * i) for i in range(13)),       # 8 .. 32 KiB
    *(aligned(13 + i, i % 3, 1 << (5 + i % 8), mid(2000 + 9000 * i)) for i in range(8)),
    *(aligned(21 + i, ODD_ALIGN, 1 << (5 + i), 50 + i) for i in range(6)),
    aligned(27, MEMALIGN, 64 * KIB, 1000), aligned(28, POSIX_MEMALIGN, 1024 * KIB, 5000),
    aligned(29, ALIGNED_ALLOC, 2048 * KIB, large(300 * KIB)),
    aligned(30, MEMALIGN, 4096 * KIB, 100), aligned(31, ODD_ALIGN, 2048 * KIB, 64),
    *(check(i) for i in range(32)),
    *(free_remote(i, i % 3) for i in range(0, 32, 3)), *(free(i) for i in range(1, 32, 3)),
    sync(), trim())

seeds["boundaries"] = cat(
    *(u8(MALLOC) + u8(i) + boundary(c, d) for i, (c, d) in enumerate(
        (c, d) for c in range(0, 54, 2) for d in (-1, 1))),
    *(free(i) for i in range(0, 54, 3)), trim(),
    *(u8(MALLOC) + u8(i) + boundary(c, 0) for i, c in enumerate(range(1, 54, 2))))

seeds["worker-handoff"] = cat(
    # main's blocks freed by workers (remote frees into main's runs), worker blocks freed by main
    # (remote frees into the workers' runs) and passed from one worker to another
    *(malloc(i, 48 + 16 * i) for i in range(16)),
    *(free_remote(i, i % 3) for i in range(16)),
    *(worker_alloc(16 + i, i % 3, [64, 200, mid(3000), large(500 * KIB)][i % 4])
      for i in range(24)),
    *(free(16 + i) for i in range(0, 24, 3)),
    *(free_remote(16 + i, (i + 1) % 3) for i in range(1, 24, 3)),
    sync(), *(malloc(i, 48 + 16 * i) for i in range(16)),
    *(worker_alloc(40 + i, 1, 100, W_CALLOC) for i in range(4)),
    *(worker_alloc(44 + i, 2, 300, W_MEMALIGN, i) for i in range(4)),
    free_all(0), sync())

seeds["orphan-adopt"] = cat(
    # worker 0 allocates, exits with blocks out (runs orphaned and published); main frees them
    # into ownerless runs, then main and worker 1 allocate the same classes (adoption)
    *(worker_alloc(i, 0, [128, 128, 1000, mid(12000)][i % 4]) for i in range(32)),
    worker_exit(0), *(free(i) for i in range(0, 32, 2)),
    burst(128, 300), burst(1000, 50, order=SHUFFLE, arg=3),
    *(worker_alloc(i, 1, [128, 1000][i % 2]) for i in range(0, 32, 2)),
    worker_exit(1), free_all(), sync(), trim(),
    *(worker_alloc(i, 2, 128) for i in range(8)), worker_exit(2), free_all())

seeds["burst-orders"] = cat(
    malloc(0, 32), malloc(1, mid(20000)),
    *(burst(n, 300, fn, order, 7, align_shift=order % 3) for order in range(6)
      for fn, n in [(B_MALLOC, 24), (B_MIXED, 200), (B_CALLOC, 700), (B_MEMALIGN, 100)]),
    burst(mid(30 * KIB), 100, order=REVERSE), burst(large(600 * KIB), 20, order=SHUFFLE, arg=9),
    sync())

seeds["trim-churn"] = cat(
    *(cat(*(worker_alloc(i, w, mid(64 * KIB)) for i in range(8)),
          *(free_remote(i, (w + 1) % 3) for i in range(8)), worker_exit(w), trim(),
          *(malloc(i, large(300 * KIB + 64 * i)) for i in range(4)), free_all(), trim())
      for w in range(3)))

# ---- one seed per planted root cause --------------------------------------------------------

# Free pushes the user pointer on the TLS SLL: the next malloc of the class returns a pointer 8
# bytes off (header mode), misaligned and overlapping its neighbour.
seeds["sll_userptr"] = cat(
    *(malloc(i, 100) for i in range(8)), *(free(i) for i in range(8)),
    *(malloc(i, 100) for i in range(8)))

# Spill stores user pointers on the slab freelist: a burst spills, the next burst refills from
# the freelist and gets blocks 8 bytes off.
seeds["magazine_userptr"] = cat(burst(100, 1024), burst(100, 1024), burst(40, 1024, order=REVERSE),
                                burst(40, 1024))

# Free of an aligned block inside a slab block skips the bridge offset (header mode): its block
# base is freed instead of its user pointer.
seeds["double_offset"] = cat(
    *(aligned(i, i % 3, [64, 256, 4096][i % 3], 100) for i in range(6)),
    *(free(i) for i in range(6)),
    *(aligned(i, MEMALIGN, 4096, mid(3000)) for i in range(4)),
    *(free_remote(i, 0) for i in range(4)),
    sync())

# The class is read from the pointer's own slab, not the run's head: blocks in the 2nd or 3rd
# slab of a mid run are not found (their slab has no class).
seeds["class_drift"] = cat(
    burst(20000, 12), burst(mid(10 * KIB), 30, order=REVERSE),
    *(malloc(i, mid(n)) for i, n in enumerate([20000] * 6 + [100 * KIB] * 4 + [150 * KIB] * 4)),
    *(free(i) for i in range(14)),
    *(worker_alloc(i, 0, mid(30 * KIB)) for i in range(10)), *(free(i) for i in range(10)))

# The drain leaves the remote queue in place: the next refill of that run drains it again and
# walks blocks that were handed out meanwhile.
seeds["remote_double_drain"] = cat(
    *(malloc(i, 64) for i in range(32)), *(free_remote(i, 0) for i in range(32)), sync(),
    burst(64, 200), burst(64, 200), burst(64, 400, order=REVERSE),
    *(worker_alloc(i, 1, 64) for i in range(16)), *(free(i) for i in range(16)),
    *(worker_alloc(i, 1, 64) for i in range(16)), free_all())

# SuperSlab unmapped with its registry entry left: a worker fills runs of its own, main frees
# its blocks, the worker exits (its runs are released, SuperSlabs empty), and the trim unmaps
# them; the registry must not name them any more. Then more mid and large allocations.
seeds["registry_late_unregister"] = cat(
    *(worker_alloc(i, 0, mid(240 * KIB)) for i in range(12)),
    *(free(i) for i in range(12)), worker_exit(0), trim(),
    *(malloc(i, mid(200 * KIB)) for i in range(6)),
    *(malloc(6 + i, large(3 * 1024 * KIB)) for i in range(3)),
    free_all(), trim())

write("alloc_ops", seeds)

# ---- dictionary: whole operations and sizes that matter, for libFuzzer's -dict (fuzz/run) --------

words = {
    "trim": trim(), "sync": sync(), "free_all": free_all(), "free_all_w1": free_all(1),
    **{f"worker_exit_{w}": worker_exit(w) for w in range(3)},
    "free_remote": free_remote(0, 0), "free": free(0), "check": check(0), "fill": fill(0),
    "malloc_100": malloc(0, 100), "malloc_20000": malloc(0, 20000),
    "malloc_150k": malloc(0, 150 * KIB), "malloc_3m": malloc(0, 3 * 1024 * KIB),
    "calloc_mid": calloc(0, 70 * KIB, 2), "calloc_overflow": calloc(0, 8, 0xFF),
    "realloc_delta": realloc(0, 10, 3), "realloc_overflow": realloc(0, 10, 2),
    "memalign_4096": aligned(0, MEMALIGN, 4096, 100),
    "posix_memalign_64": aligned(0, POSIX_MEMALIGN, 64, 200),
    "aligned_alloc_2m": aligned(0, ALIGNED_ALLOC, 2048 * KIB, 300 * KIB),
    "odd_align": aligned(0, ODD_ALIGN, 256, 40),
    "worker_alloc_64": worker_alloc(0, 0, 64), "worker_alloc_240k": worker_alloc(0, 1, 240 * KIB),
    "worker_memalign": worker_alloc(0, 2, 300, W_MEMALIGN, 3),
    "burst_spill": burst(100, 1024), "burst_remote": burst(64, 512, order=HALF_REMOTE, arg=1),
    "burst_shuffle": burst(48, 1024, B_MIXED, SHUFFLE, 5), "burst_mid_runs": burst(20000, 12),
    "burst_memalign": burst(200, 256, B_MEMALIGN, REVERSE, align_shift=4),
    "size_mid_run": size(20000), "size_slab_max": boundary(53), "size_slab_over": boundary(53, 1),
    "size_large": size(MID_MAX + 1),
    "size_tiny_max": size(TINY_MAX), "size_tiny_over": size(TINY_MAX + 1),
}
path = os.path.join(ROOT, "dict", "alloc_ops.dict")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    f.write("# Generated by fuzz/seeds/alloc_ops.py: whole operations of fuzz/alloc_ops.c.\n")
    for name, data in words.items():
        f.write(f'{name}="' + "".join(f"\\x{b:02x}" for b in data) + '"\n')

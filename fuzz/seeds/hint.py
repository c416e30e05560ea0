"""Seeds of fuzz/hint.c: see the input format at the top of the harness.

The harness thread's first block (class 0) binds a run at the start of SuperSlab A, the first
SuperSlab seen (index 0). The largest class needs runs of 16 slabs: A has room for one more,
so a worker's second and third runs of that class go to a new SuperSlab B (index 1), which is
empty again once the worker has exited."""
from seedlib import u8, write

ALLOC, FREE, WORKER, TRIM, INSERT, FREE_ALL, BURST = range(7)
BIG = 51  # largest class: 256 KiB blocks, runs of 16 slabs
NEWEST, OLDEST = 0, 1


def worker(cls, k, order=NEWEST):
    """a worker allocates k + 1 blocks of cls, frees them, exits"""
    return u8(WORKER) + u8(cls) + u8(k) + u8(order)


def alloc(slot, cls):
    return u8(ALLOC) + u8(slot) + u8(cls)


seeds = {
    # B emptied by a worker, hinted, unmapped by the trim: the entry must not hit
    "unmap": worker(BIG, 7) + u8(INSERT) + u8(1) + u8(TRIM) + alloc(1, 3) + u8(FREE) + u8(1),
    # B emptied, hinted, then reused by the next worker (generation bump): no hit
    "reuse": worker(BIG, 7) + u8(INSERT) + u8(1) + worker(BIG, 7, OLDEST) + u8(INSERT) + u8(0)
    + worker(BIG, 11),
    # the harness thread's own frees insert A and B (misses), hit them, then B is recycled
    "own-frees": u8(BURST) + u8(2) + u8(BIG) + u8(7) + u8(FREE_ALL) + worker(BIG, 7)
    + u8(TRIM) + u8(BURST) + u8(2) + u8(BIG) + u8(7) + u8(FREE_ALL),
    # frees of many small blocks: one miss, then hits in the same SuperSlab
    "hits": b"".join(alloc(i, i % 8) for i in range(32)) + b"".join(u8(FREE) + u8(i) for i in range(32))
    + u8(INSERT) + u8(0),
    # two ways: both SuperSlabs hinted, one recycled under the hint, the other still hits
    "two-ways": worker(BIG, 7) + u8(INSERT) + u8(1) + u8(INSERT) + u8(0) + u8(TRIM)
    + worker(BIG, 3) + worker(40, 31) + u8(INSERT) + u8(2) + worker(BIG, 7) + u8(TRIM),
}
write("hint", seeds)

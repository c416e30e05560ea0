"""Seeds of fuzz/superslab.c: see the input format at the top of the harness."""
from seedlib import u8, u16, write

TAKE, RELEASE, ALLOC, ALLOC_RUN, FREE, FREE_TAILS, NEW_THREAD, TRIM, FREE_ALL = range(9)
NUM_CLASSES = 52
BIGGEST = NUM_CLASSES - 1  # runs of half a SuperSlab


def take(c):
    return u8(TAKE) + u8(c)


def release(h):
    return u8(RELEASE) + u8(h)


def alloc(slot, c, jitter=0):
    return u8(ALLOC) + u8(slot) + u8(c) + u16(jitter)


def alloc_run(mid, count):
    return u8(ALLOC_RUN) + u8(mid) + u8(count - 1)


def ops(*names):
    return b"".join(u8(n) for n in names)


seeds = {
    # every class bound and given back directly, 16 at a time, then a trim
    "take-release-all": b"".join(
        b"".join(take(c) for c in range(base, min(base + 16, NUM_CLASSES)))
        + b"".join(release(h) for h in range(16)) for base in range(0, NUM_CLASSES, 16))
    + ops(TRIM),
    # blocks in the 2nd..nth slab of multi-slab mid runs: checked, then freed
    "mid-tails": b"".join(alloc_run(mid, 20) + ops(FREE_TAILS, FREE_ALL)
                          for mid in range(0, 24, 3)),
    # the same, the tails freed by the next thread (remote frees into orphaned runs)
    "mid-tails-remote": alloc_run(0, 16) + alloc_run(5, 8) + ops(NEW_THREAD, FREE_TAILS, FREE_ALL),
    # a SuperSlab emptied, then reused: its generation bumps
    "reuse-generation": (b"".join(take(BIGGEST) for _ in range(4))
                         + b"".join(release(h) for h in range(4))
                         + b"".join(take(BIGGEST) for _ in range(4))
                         + b"".join(release(h) for h in range(4))
                         + ops(TRIM) + take(BIGGEST) + release(0)),
    # blocks of many classes by one thread, some left live at its end; the next frees them
    "thread-churn": (b"".join(alloc(i, (i * 7) % NUM_CLASSES, i * 13) for i in range(40))
                     + b"".join(u8(FREE) + u8(i) for i in range(0, 40, 2)) + ops(NEW_THREAD)
                     + b"".join(alloc(i, (i * 5) % NUM_CLASSES) for i in range(0, 40, 2))
                     + ops(NEW_THREAD, FREE_ALL, NEW_THREAD, TRIM)
                     + b"".join(alloc(i, (i * 7) % NUM_CLASSES) for i in range(20))
                     + ops(FREE_ALL)),
    # direct runs and allocator runs side by side, trims in between
    "mixed": (take(30) + alloc(0, 30) + take(0) + alloc(1, 0) + alloc_run(2, 10) + ops(TRIM)
              + release(0) + ops(NEW_THREAD) + alloc(2, 30) + ops(TRIM, FREE_ALL) + release(1)
              + ops(NEW_THREAD, TRIM)),
}
write("superslab", seeds)

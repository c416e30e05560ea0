"""Seeds of fuzz/remote_queue.c: see the input format at the top of the harness."""
from seedlib import u8, u32, write

AFTER, CONCURRENT, PARTIAL = range(3)
EXPLICIT = 4


def header(cls, nprod, rounds):
    return u8(cls) + u8(nprod - 1) + u8(rounds - 1)


def rnd(mode, take, seed, density, early=None):
    b = u8(mode) + u8(take) + u32(seed) + u8(density)
    return b + (u8(early) if early is not None else b"")


def explicit(mode, take, pairs, early=None):
    b = (u8(mode | EXPLICIT) + u8(take) + u8(len(pairs))
         + b"".join(u8(k) + u8(p) for k, p in pairs))
    return b + (u8(early) if early is not None else b"")


seeds = {
    # the unit test's shape: 4 producers, three quarters of the blocks, drains after / during
    "unit-shape": header(1, 4, 8) + b"".join(
        rnd(AFTER if r % 2 == 0 else CONCURRENT, 255, 42 + r, 192) for r in range(8)),
    # one producer, every block, then all taken back and pushed again
    "all-blocks": header(0, 1, 4) + b"".join(rnd(AFTER, 255, 7, 255) for _ in range(4)),
    # a drain after the first producer is done, while the others push
    "partial-drain": header(5, 3, 6) + b"".join(rnd(PARTIAL, 100, 99 + r, 200, r)
                                                for r in range(6)),
    # explicit small sets on a mid class (a multi-slab run of few blocks)
    "mid-explicit": header(40, 2, 5) + b"".join(
        explicit([AFTER, CONCURRENT, PARTIAL][r % 3], r, [(0, 0), (1, 1), (2, 0), (5, 1)], 0)
        for r in range(5)),
    # rounds where nothing is pushed, between rounds that push
    "empty-rounds": header(19, 2, 6) + b"".join(rnd(r % 3, 0, r, 0 if r % 2 else 128, 1)
                                                for r in range(6)),
}
write("remote_queue", seeds)

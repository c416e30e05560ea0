"""Seeds of fuzz/remote_queue.c: see the input format at the top of the harness."""
from seedlib import u8, u32, write

AFTER, CONCURRENT, PARTIAL = range(3)
EXPLICIT, ARM, ORPHAN, FORCE = 4, 8, 16, 128


def chain(n):
    """mode bits of chains of n (1..4) blocks"""
    return (n - 1) << 5


def header(cls, nprod, rounds):
    return u8(cls) + u8(nprod - 1) + u8(rounds - 1)


def rnd(mode, take, seed, density, early=None):
    b = u8(mode) + u8(take) + u32(seed) + u8(density)
    return b + (u8(early) if early is not None else b"")


def explicit(mode, take, pairs, early=None):
    b = (u8(mode | EXPLICIT) + u8(take) + u8(len(pairs))
         + b"".join(u8(k) + u8(p) for k, p in pairs))
    return b + (u8(early) if early is not None else b"")


def mode(timing, flags):
    """The mode byte with flags (bits 2..7) whose value % 3 is timing."""
    return flags | next(t for t in range(3) if (flags + t) % 3 == timing)


def rnd2(timing, flags, take, seed, density, early):
    return rnd(mode(timing, flags), take, seed, density, early if timing == PARTIAL else None)


def explicit2(timing, flags, take, pairs, early):
    return explicit(mode(timing, flags | EXPLICIT), take, pairs,
                    early if timing == PARTIAL else None)


def whole_seed(k, skip):
    """The skip-th seed whose random subset of density 255 is all of k blocks."""
    seed = 0
    while True:
        seed += 1
        x, whole = seed | 1, True
        for _ in range(k):
            x ^= (x << 13) & (2**64 - 1)
            x ^= x >> 7
            x ^= (x << 17) & (2**64 - 1)
            whole &= (x & 0xFF) < 255
        if whole:
            if skip == 0:
                return seed
            skip -= 1


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
    # an armed run: the first free of a round takes the notification, the others push; chains
    # of 1..4 blocks; odd rounds free a delivered chain again in push mode
    "armed": header(3, 4, 8) + b"".join(rnd2(r % 3, ARM | chain(1 + r % 4), 255, 5 + r, 160, r)
                                        for r in range(8)),
    # forced notify: every chain into an owned run is delivered (even rounds) or delivered and
    # pushed again (odd rounds)
    "forced-notify": header(7, 3, 6) + b"".join(rnd2(r % 3, FORCE | chain(2), 255, 11 + r, 128, 1)
                                                for r in range(6)),
    # orphans whose every block out is freed: one free claims the run (after the frees), or
    # races the adopter (concurrently, or after the first producer)
    "orphan-claim": header(40, 4, 8) + b"".join(
        explicit2(r % 3, ORPHAN | chain(1 + r % 3), 255, [(k, k % 4) for k in range(32)], 0)
        for r in range(8)),
    # orphans with blocks left out: adopted after the frees, during them, or between
    "orphan-adopt": header(2, 3, 6) + b"".join(rnd2(r % 3, ORPHAN | chain(1 + r % 4), 255, 21 + r,
                                                    96, 1) for r in range(6)),
    # tiny orphans (256 blocks) freed whole in chains of 4 by 2 producers; forced notify in
    # the last round (an orphan takes no delivery; once adopted, every chain is delivered)
    "orphan-tiny-claim": header(0, 2, 4) + b"".join(
        rnd2(timing, ORPHAN | chain(4) | force, 255, whole_seed(256, r), 255, 0)
        for r, (timing, force) in enumerate([(AFTER, 0), (CONCURRENT, 0), (AFTER, 0),
                                             (CONCURRENT, FORCE)])),
}
write("remote_queue", seeds)

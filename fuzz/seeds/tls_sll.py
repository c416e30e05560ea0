"""Seeds of fuzz/tls_sll.c: see the input format at the top of the harness."""
from seedlib import u8, u16, write

MALLOC, FREE, BURST, FREE_CLASS, FREE_MALLOC, NEW_THREAD, FREE_ALL_CLASS, WALK = range(8)
NUM_CLASSES = 52
NEWEST, OLDEST = 0, 1


def burst(cls, k):
    """k + 1 mallocs of class cls"""
    return u8(BURST) + u8(cls) + u8(k)


def free_class(cls, k, order=NEWEST):
    return u8(FREE_CLASS) + u8(cls) + u8(k) + u8(order)


seeds = {
    # a list popped empty (refills), then pushed over its capacity (spills), both orders
    "burst-spill": burst(3, 63) + burst(3, 63) + free_class(3, 63) + free_class(3, 63, OLDEST)
    + burst(3, 40) + free_class(3, 63, OLDEST) + u8(WALK),
    # free then malloc of the same class: the same block comes back
    "lifo": b"".join(burst(c, 5) for c in (0, 7, 19, 30, 51))
    + b"".join(u8(FREE_MALLOC) + u16(7 * i) for i in range(30)) + u8(WALK),
    # mid classes: small capacities, a spill every few frees
    "mid": b"".join(burst(c, 9) for c in range(20, NUM_CLASSES, 3))
    + b"".join(u8(FREE_ALL_CLASS) + u8(c) for c in range(20, NUM_CLASSES, 3)),
    # refills without spills grow the capacity (ACE), then one long spill
    "ace-grow": b"".join(burst(0, 63) for _ in range(7)) + u8(FREE_ALL_CLASS) + u8(0)
    + burst(0, 63) + u8(WALK),
    # blocks of an ended thread: remote frees leave the list alone; a refill adopts their run
    "handoff": burst(5, 30) + burst(12, 8) + u8(NEW_THREAD) + free_class(5, 15)
    + u8(MALLOC) + u8(5) + u16(0) + free_class(5, 30, OLDEST) + u8(FREE_ALL_CLASS) + u8(12),
    # one block of every class, freed in a scattered order
    "every-class": b"".join(u8(MALLOC) + u8(c) + u16(c * 101) for c in range(NUM_CLASSES))
    + b"".join(u8(FREE) + u16(11 * i) for i in range(NUM_CLASSES)) + u8(WALK),
}
write("tls_sll", seeds)

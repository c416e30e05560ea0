"""Seeds of fuzz/magazine.c: see the input format at the top of the harness."""
from seedlib import u8, write

ALLOC, FREE, REMOTE, NEW_THREAD, FREE_CLASS, AUDIT = range(6)
NUM_CLASSES = 52
NEWEST, OLDEST, EVERY_OTHER = range(3)


def alloc(cls, k):
    """k + 1 mallocs of class cls"""
    return u8(ALLOC) + u8(cls) + u8(k)


def free(cls, k, order=NEWEST):
    return u8(FREE) + u8(cls) + u8(k) + u8(order)


def remote(cls, k):
    return u8(REMOTE) + u8(cls) + u8(k)


seeds = {
    # refills from fresh runs, spills back in three orders, the same class again
    "refill-spill": alloc(2, 127) + alloc(2, 127) + free(2, 127, EVERY_OTHER)
    + free(2, 127, OLDEST) + alloc(2, 100) + free(2, 127) + u8(FREE_CLASS) + u8(2) + u8(AUDIT),
    # a run filled up (full list), a block of it freed back (partial again), empty runs released
    "full-partial": alloc(30, 40) + free(30, 3, OLDEST) + alloc(30, 10) + free(30, 127, EVERY_OTHER)
    + u8(FREE_CLASS) + u8(30) + alloc(30, 5) + u8(AUDIT),
    # remote frees pending on owned runs, drained by the next refill
    "remote-drain": alloc(6, 127) + remote(6, 63) + remote(6, 20) + u8(AUDIT) + alloc(6, 127)
    + alloc(6, 127) + free(6, 127, EVERY_OTHER) + remote(6, 63) + u8(FREE_CLASS) + u8(6),
    # orphaned runs adopted by the next thread's refill, their blocks freed in both threads
    "adopt": alloc(10, 60) + alloc(44, 6) + u8(NEW_THREAD) + free(10, 30, OLDEST) + alloc(10, 20)
    + remote(44, 3) + alloc(44, 2) + free(10, 127) + u8(AUDIT),
    # ACE: many refills without a spill grow the capacity, then one long spill
    "ace": b"".join(alloc(0, 127) for _ in range(7)) + u8(FREE_CLASS) + u8(0) + alloc(0, 127)
    + remote(0, 63) + u8(AUDIT),
    # many classes at once
    "many-classes": b"".join(alloc(c, 20) for c in range(0, NUM_CLASSES, 4))
    + b"".join(free(c, 15, c % 3) for c in range(0, NUM_CLASSES, 4))
    + b"".join(remote(c, 3) for c in range(0, NUM_CLASSES, 8)) + u8(AUDIT),
    # the only partial run of the class is emptied by a spill and kept; a remote free notifies
    # a full run, which the next refill (of another class) moves back beside it
    "notify-beside-empty": alloc(51, 3) + alloc(51, 1) + free(51, 0, OLDEST) + free(51, 1)
    + remote(51, 0) + alloc(10, 0) + u8(AUDIT),
}
write("magazine", seeds)

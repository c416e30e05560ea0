"""Seeds of fuzz/publish_adopt.c: see the input format at the top of the harness."""
from seedlib import u8, write

ALLOC, FREE, EXIT, ALLOC2, ALLOC_FREE, FREE_CLASS = range(6)
ADOPT_OFF, MUST_ADOPT, FORCE_NOTIFY = 1, 2, 4
MAIN = 3


def alloc(w, c, n):
    return u8(ALLOC) + u8(w) + u8(c) + u8(n - 1)


def free(who, slots):
    return u8(FREE) + u8(who) + u8(len(slots) - 1) + b"".join(u8(s) for s in slots)


def exit_(w):
    return u8(EXIT) + u8(w)


def alloc2(w, c, n, w2, c2, n2):
    return u8(ALLOC2) + u8(w) + u8(c) + u8(n - 1) + u8(w2) + u8(c2) + u8(n2 - 1)


def alloc_free(w, c, n, who, slots):
    return (u8(ALLOC_FREE) + u8(w) + u8(c) + u8(n - 1) + u8(who) + u8(len(slots) - 1)
            + b"".join(u8(s) for s in slots))


def free_class(who, c):
    return u8(FREE_CLASS) + u8(who) + u8(c)


# worker 0 fills runs of two classes and exits; the harness frees some blocks into the
# orphans; worker 1 adopts them; the rest come back by last frees
orphan_cycle = (alloc(0, 0, 32) + alloc(0, 0, 32) + alloc(0, 3, 8) + exit_(0)
                + free(MAIN, list(range(0, 32, 3))) + alloc(1, 0, 32) + alloc(1, 3, 4)
                + free(2, list(range(1, 40, 2))) + exit_(1) + free_class(MAIN, 0)
                + free_class(2, 3))

seeds = {
    "orphan-adopt": u8(0) + orphan_cycle,
    "adoption-off": u8(ADOPT_OFF) + orphan_cycle,
    "must-adopt-notify": u8(MUST_ADOPT | FORCE_NOTIFY) + orphan_cycle,
    # two workers refill the same class at once while published runs wait: adopted once each
    "adopt-race": u8(0) + alloc(0, 1, 32) + alloc(0, 1, 32) + alloc(0, 1, 32) + exit_(0)
    + alloc(1, 4, 8) + exit_(1) + alloc2(1, 1, 32, 2, 1, 32) + alloc2(0, 4, 8, 2, 4, 8)
    + free_class(MAIN, 1) + exit_(1) + exit_(2) + free_class(0, 4),
    # frees into a run while its owner refills, and into orphans while others adopt them
    "alloc-while-free": u8(0) + alloc(0, 2, 32) + alloc_free(0, 2, 32, 1, list(range(16)))
    + exit_(0) + alloc_free(2, 2, 32, MAIN, list(range(16, 48))) + exit_(2) + exit_(1),
    # the last block of each orphan freed one by one
    "last-frees": u8(ADOPT_OFF) + alloc(0, 3, 16) + alloc(0, 4, 8) + exit_(0)
    + b"".join(free(MAIN, [i]) for i in range(24)),
}
write("publish_adopt", seeds)

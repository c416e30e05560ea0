"""Seeds of fuzz/ptr_bridge.c: see the input format at the top of the harness."""
from seedlib import u8, u16, write

ALLOC, ALIGNED, FREE, MANUAL, REALLOC, FREE_ALL = range(6)
NUM_CLASSES = 52
MALLOC, CALLOC = range(2)
MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, VALLOC, PVALLOC = range(5)


def alloc(slot, cls, v=0xFFFF, api=MALLOC):
    return u8(ALLOC) + u8(slot) + u8(cls) + u16(v) + u8(api)


def aligned(slot, cls, shift, api=MEMALIGN, v=0x1234):
    """align = 1 << (3 + shift)"""
    return u8(ALIGNED) + u8(slot) + u8(cls) + u16(v) + u8(shift) + u8(api)


def free(slot):
    return u8(FREE) + u8(slot)


seeds = {
    # every class, tiny and mid, largest request of the class, then freed in reverse
    "every-class": b"".join(alloc(c % 48, c) for c in range(48))
    + b"".join(free(c % 48) for c in reversed(range(48)))
    + b"".join(alloc(c - 48, c, 0, CALLOC) for c in range(48, NUM_CLASSES)) + u8(FREE_ALL),
    # aligned allocations 8 .. 4096 in small classes, through every API, freed one by one
    # (an aligned free takes the slow path back to its block)
    "aligned": b"".join(aligned(i, i % 12, i % 10, i % 5, 40 * i) for i in range(40))
    + b"".join(free(i) for i in range(40)),
    # page-aligned blocks inside mid blocks: the marker path for every alignment
    "aligned-mid": b"".join(aligned(i, 20 + i, 4 + i % 6, MEMALIGN, 7 * i) for i in range(24))
    + b"".join(free(i) for i in reversed(range(24))),
    # blocks taken off the TLS SLL by hand and encoded with hak_bridge_out, freed by hak_free
    "manual": b"".join(u8(MANUAL) + u8(i) + u8(3 * i % NUM_CLASSES) for i in range(30))
    + b"".join(free(i) for i in range(0, 30, 2)) + u8(FREE_ALL),
    # realloc within and across classes, of plain and aligned blocks
    "realloc": alloc(0, 5) + aligned(1, 6, 5, MEMALIGN) + aligned(2, 3, 9, POSIX_MEMALIGN)
    + b"".join(u8(REALLOC) + u8(i % 3) + u8(c) + u16(c * 13) for i, c in
               enumerate([5, 9, 2, 30, 7, 1, 20, 40, 0, 15, 15, 3]))
    + u8(FREE_ALL),
    # free-then-reuse churn in one class: LIFO reuse of the same block, header flips each time
    "churn": b"".join(alloc(i % 4, 4, i) + free((i + 2) % 4) for i in range(40)) + u8(FREE_ALL),
}
write("ptr_bridge", seeds)

"""Seeds of fuzz/registry.c: see the input format at the top of the harness."""
from seedlib import u8, u16, u32, write

ALLOC, FREE, TRIM, LOOKUP_IN, LOOKUP_ANY, FREE_ALL, NEW_THREAD = range(7)
TINY, MID, LARGE = range(3)


def alloc(slot, kind, v):
    return u8(ALLOC) + u8(slot) + u8(kind) + u16(v)


seeds = {
    # a SuperSlab is filled, emptied and unmapped by the trim; its entry must be gone
    "tiny-free-trim": b"".join(alloc(i, TINY, 16 * i + 8) for i in range(16))
    + b"".join(u8(FREE) + u8(i) for i in range(16)) + u8(NEW_THREAD) + u8(TRIM) + u8(LOOKUP_IN) + u8(0) + u32(4096),
    # mid runs and large mappings, freed and trimmed, then the same sizes again (reuse)
    "mixed-reuse": b"".join(alloc(i, i % 3, 1000 * i + 7) for i in range(12)) + u8(FREE_ALL)
    + u8(NEW_THREAD) + u8(TRIM) + b"".join(alloc(i, i % 3, 1000 * i + 7) for i in range(12))
    + u8(FREE_ALL),
    # large blocks only: one region each, cached then unmapped
    "large-trim": b"".join(alloc(i, LARGE, 300 * i) for i in range(8))
    + b"".join(u8(FREE) + u8(i) for i in range(8)) + u8(TRIM)
    + b"".join(u8(LOOKUP_IN) + u8(i) + u32(0) for i in range(8)),
    # foreign and absurd addresses
    "foreign": u8(LOOKUP_ANY) + u32(0) + u32(0) + u8(LOOKUP_ANY) + u32(0x1000) + u32(0x7FFF)
    + u8(LOOKUP_ANY) + u32(0xFFFFFFFF) + u32(0xFFFFFFFF) + u8(LOOKUP_ANY) + u32(0) + u32(0x8000),
    # interleaved: keep one block alive while its neighbours come and go, trimming each time
    "keep-one": alloc(0, TINY, 40) + b"".join(alloc(1 + i % 4, i % 2, 500 + i) + u8(FREE)
                                              + u8(1 + i % 4) + u8(NEW_THREAD) + u8(TRIM)
                                              for i in range(10)),
    # a block allocated by one thread and freed by the next (orphan, adoption, release)
    "cross-thread": alloc(0, TINY, 100) + alloc(1, MID, 3000) + u8(NEW_THREAD) + u8(FREE) + u8(0)
    + u8(FREE) + u8(1) + u8(NEW_THREAD) + u8(TRIM) + u8(LOOKUP_IN) + u8(0) + u32(64),
}
write("registry", seeds)

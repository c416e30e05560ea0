"""Seeds of fuzz/ownership.c: see the input format at the top of the harness."""
from seedlib import u8, write

RACE, ALLOC, FREE, EXIT, PAR = range(5)
ADOPT, GIVE_UP, FREE_BLOCKS, COLLECT = range(4)
MAIN = 3


def race(nracers, nruns, cls, reps, scripts):
    b = u8(RACE) + u8(nracers - 2) + u8(nruns - 1) + u8(cls) + u8(reps - 1)
    for ops in scripts:
        b += u8(len(ops)) + b"".join(u8(k) + u8(r) + u8(t) for k, r, t in ops)
    return b


def alloc(w, c, n):
    return u8(ALLOC) + u8(w) + u8(c) + u8(n - 1)


def free(who, slots):
    return u8(FREE) + u8(who) + u8(len(slots) - 1) + b"".join(u8(s) for s in slots)


def par(w, c, n, who, slots):
    return (u8(PAR) + u8(w) + u8(c) + u8(n - 1) + u8(who) + u8(len(slots) - 1)
            + b"".join(u8(s) for s in slots))


def exit_(w):
    return u8(EXIT) + u8(w)


seeds = {
    # four racers adopt, arm and give up one run, 32 times over
    "race-acquire": race(4, 1, 3, 32, [[(ADOPT, 0, 0), (COLLECT, 0, 0), (GIVE_UP, 0, 0)]] * 4),
    # runs handed around by give-ups and adoptions while blocks of them are freed
    "race-transfer": race(3, 2, 20, 32, [
        [(ADOPT, 0, 0), (FREE_BLOCKS, 0, 1), (ADOPT, 1, 0), (GIVE_UP, 1, 0), (GIVE_UP, 0, 0)],
        [(ADOPT, 1, 0), (FREE_BLOCKS, 1, 2), (GIVE_UP, 0, 0), (FREE_BLOCKS, 0, 2),
         (COLLECT, 0, 0)],
        [(GIVE_UP, 0, 0), (GIVE_UP, 1, 0), (FREE_BLOCKS, 0, 0), (FREE_BLOCKS, 1, 1),
         (ADOPT, 0, 0)]]),
    # the free of an orphan's last block races its adoption: two racers free every block of
    # four runs (two start orphaned), two adopt, arm (deliveries) and give up
    "race-claim-adopt": race(4, 4, 44, 4, [
        [(FREE_BLOCKS, r, 3) for r in range(4)] * 2,
        [(FREE_BLOCKS, r, 2) for r in (3, 2, 1, 0)] * 2,
        [(ADOPT, 0, 0), (COLLECT, 0, 0), (COLLECT, 1, 0), (GIVE_UP, 0, 0), (GIVE_UP, 1, 0)] * 2,
        [(ADOPT, 0, 0), (ADOPT, 0, 0), (COLLECT, 2, 0), (COLLECT, 3, 0), (GIVE_UP, 2, 0),
         (GIVE_UP, 3, 0)] * 2]),
    # blocks of worker 0 freed by worker 1 and by the harness thread: the owner stays
    "remote-free": alloc(0, 2, 20) + free(1, list(range(16))) + free(MAIN, list(range(16, 20)))
    + alloc(0, 2, 8) + exit_(0) + exit_(1),
    # worker 0 exits with blocks live: its runs are orphaned, published, then adopted by 1
    "orphan-adopt": alloc(0, 4, 32) + alloc(0, 4, 32) + exit_(0) + free(MAIN, list(range(0, 32, 2)))
    + alloc(1, 4, 32) + free(2, list(range(1, 32, 2))) + exit_(1) + alloc(2, 4, 8) + exit_(2),
    # worker 0 allocates while worker 1 frees its earlier blocks
    "concurrent": (alloc(0, 1, 32) + par(0, 1, 32, 1, list(range(16)))
                   + par(0, 1, 16, MAIN, list(range(16, 32))) + exit_(0)
                   + par(1, 1, 32, 2, list(range(32, 48)))),
    # races and the public API interleaved
    "mixed": (alloc(0, 6, 4)
              + race(2, 4, 51, 8, [[(ADOPT, r, 0) for r in range(4)],
                                   [(FREE_BLOCKS, r, 0) for r in range(4)]])
              + exit_(0) + alloc(1, 6, 4)
              + race(4, 1, 0, 4, [[(ADOPT, 0, 1), (FREE_BLOCKS, 0, 1)], [(GIVE_UP, 0, 0)],
                                  [(ADOPT, 0, 3), (FREE_BLOCKS, 0, 2)], [(COLLECT, 0, 0)]])),
}
write("ownership", seeds)

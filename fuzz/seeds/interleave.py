"""Seeds of fuzz/interleave.c: see the input format at the top of the harness.

Each seed drives one cross-thread window the harness can hold open; with the planted bug of
that window (HAKMEM_PLANT_BUG) the seed itself fails, so the corpus replay catches it."""
from seedlib import u8, u32, write

ADOPT_OFF, FORCE_NOTIFY, MUST_ADOPT = 1, 2, 4
BATCH2, BATCH8, BATCH32 = 1 << 3, 2 << 3, 3 << 3  # remote frees held back per run (else 1)
# schedule points (enum hak_sched_point up to HAK_SP_BEFORE_UNMAP: the harness's NPOINTS)
BEFORE_PUSH, AFTER_PUSH, BEFORE_DELIVER, DRAIN, ORPHAN_PUBLISH, BEFORE_RELEASE = range(6)
NPOINTS = 8  # the six above, purge_sleep, before_unmap
# class_table indices
C0, C3, C8, C12, C19, C24, C30, C38, CBIG = range(9)
NCLASSES = 9
# volunteers
NONE, OWNER, FREER = range(3)
# script ops
START_F, O_EXIT, TRIM, CHURN, FREE_SOME, PARK, FORK, H_CHURN = range(8)
WAIT, RELEASE = 0, 1
M64 = (1 << 64) - 1


def by_f(seed, density, n):
    """The harness's choice of F's blocks (xorshift64 from the seed)."""
    rng = (seed | seed << 32 | 1) & M64
    out = []
    for _ in range(n):
        rng ^= (rng << 13) & M64
        rng ^= rng >> 7
        rng ^= (rng << 17) & M64
        out.append((rng & 255) < density)
    return out


def seed_for(want, density):
    """A seed whose choice of F's blocks is exactly want (a list of bools)."""
    for s in range(1, 1 << 24):
        if by_f(s, density, len(want)) == want:
            return s
    raise SystemExit("no seed for %r" % want)


def header(flags, widen=(0,) * NPOINTS, rounds=1):
    assert len(widen) == NPOINTS
    return u8(flags) + b"".join(u8(w) for w in widen) + u8(rounds - 1)


def rnd(groups, volunteer, point, seed, density, steps):
    b = u8(len(groups) - 1) + b"".join(u8(c) + u8(n - 1) for c, n in groups)
    b += u8(volunteer) + u8(point) + u32(seed) + u8(density)
    return b + u8(len(steps)) + b"".join(u8(op) + u8(arg) for op, arg in steps)


def churn_arg(cls, k):
    """The arg of a churn of k blocks of class_table[cls]."""
    assert 1 <= k <= 29
    return cls + NCLASSES * (k - 1)


def frees(k):
    """FREE_SOME steps that free k blocks."""
    out = []
    while k > 0:
        n = min(k, 8)
        out.append((FREE_SOME, n - 1))
        k -= n
    return out


# The owner binds runs of the largest class: the first in the SuperSlab the main thread's
# cache already uses, then two in a SuperSlab of its own (the first exhausted, so armed; the
# last partial, not armed). F frees the last block (in the partial run, so the free pushes) and
# parks right after the push; the main thread frees the rest, the owner exits (its runs
# released: every block is back or queued) and the trim unmaps that SuperSlab under F.
N_PUSH = 8
last_of8 = [i == N_PUSH - 1 for i in range(N_PUSH)]
trim_after_push = header(0) + rnd(
    [(CBIG, N_PUSH)], FREER, AFTER_PUSH, seed_for(last_of8, 40), 40,
    [(START_F, 0), (PARK, WAIT)] + frees(N_PUSH - 1) + [(O_EXIT, 0), (TRIM, 0), (PARK, RELEASE)])

# Every remote free notifies; F is parked before its decision, the owner exits (its run
# published), the main thread adopts the run, H takes the owner's recycled cache; then F
# delivers (to the main thread, the run's owner now), and H refills (collects its deliveries).
only0 = [i == 0 for i in range(4)]
stale_notify = header(FORCE_NOTIFY) + rnd(
    [(C12, 4)], FREER, BEFORE_PUSH, seed_for(only0, 60), 60,
    [(START_F, 0), (PARK, WAIT), (O_EXIT, 0), (CHURN, churn_arg(C12, 4)),
     (H_CHURN, churn_arg(C0, 1)), (PARK, RELEASE), (H_CHURN, churn_arg(C8, 2)),
     (CHURN, churn_arg(C12, 8))])

# Adoption off: the owner exits and parks after giving up its run's owner word; the main
# thread frees two blocks then (queued on the word), lets it go and frees the rest: the last
# free must release the run.
orphan_count = header(ADOPT_OFF) + rnd(
    [(C19, 20)], OWNER, ORPHAN_PUBLISH, 1, 0,
    [(O_EXIT, 0), (PARK, WAIT), (FREE_SOME, 1), (PARK, RELEASE)])

# Forks while the owner holds its blocks: the child takes over its cache (and runs) and frees
# them; another child frees a block no run has carved yet.
fork_takeover = header(0) + rnd([(C8, 30), (C30, 3)], NONE, 0, 1, 0, [(FORK, 0)])
fork_uncarved = header(0) + rnd([(C8, 3)], NONE, 0, 1, 0, [(FORK, 1)])

# Everything at once, slowed down at every window: three rounds, backouts on.
mixed = header(MUST_ADOPT | FORCE_NOTIFY, (3, 2, 5, 1, 4, 2, 0, 1), 3) + b"".join(
    rnd([(C3, 20), (C24, 5), (CBIG, 2)], v, p, 7 + v, 128,
        [(START_F, 0), (CHURN, churn_arg(C3, 10)), (O_EXIT, 0), (TRIM, 0),
         (H_CHURN, churn_arg(C24, 3)), (FREE_SOME, 7), (PARK, RELEASE)])
    for v, p in ((FREER, DRAIN), (OWNER, BEFORE_RELEASE), (FREER, BEFORE_DELIVER)))

# The same with remote frees held back and pushed in chains: 8 per run with the backouts on,
# 32 per run with adoption off (the last frees into an orphan are pushed at once).
mixed_batched = header(MUST_ADOPT | FORCE_NOTIFY | BATCH8, (3, 2, 5, 1, 4, 2, 0, 1), 3) + b"".join(
    rnd([(C3, 20), (C24, 5), (CBIG, 2)], v, p, 7 + v, 128,
        [(START_F, 0), (CHURN, churn_arg(C3, 10)), (O_EXIT, 0), (TRIM, 0),
         (H_CHURN, churn_arg(C24, 3)), (FREE_SOME, 7), (PARK, RELEASE)])
    for v, p in ((FREER, DRAIN), (OWNER, BEFORE_RELEASE), (FREER, BEFORE_DELIVER)))
orphan_batched = header(ADOPT_OFF | BATCH32) + rnd(
    [(C19, 20), (C3, 40)], OWNER, ORPHAN_PUBLISH, 5, 200,
    [(START_F, 0), (O_EXIT, 0), (PARK, WAIT), (FREE_SOME, 3), (PARK, RELEASE), (TRIM, 0)])

write("interleave", {
    "trim-after-push": trim_after_push,
    "stale-notify": stale_notify,
    "orphan-count": orphan_count,
    "fork-takeover": fork_takeover,
    "fork-uncarved": fork_uncarved,
    "mixed": mixed,
    "mixed-batched": mixed_batched,
    "orphan-batched": orphan_batched,
})

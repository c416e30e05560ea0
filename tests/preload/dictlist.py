"""Dict- and list-heavy workload for the preload tests: deterministic output (checksums of
the data structures built), so a run under LD_PRELOAD=libhakmem.so must print exactly what a
plain run prints."""
import random
import zlib


def crc(obj):
    return zlib.crc32(repr(obj).encode()) & 0xFFFFFFFF


def words(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def main():
    rng = random.Random(1234)
    vocab = words(rng, 20000)

    # Word counts: a dict of small ints, grown one key at a time.
    counts = {}
    for _ in range(300000):
        w = vocab[rng.randrange(len(vocab))]
        counts[w] = counts.get(w, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    print("distinct words:", len(counts))
    print("top:", top[:5])
    print("counts crc:", crc(sorted(counts.items())))

    # Index: dict of lists, lists of tuples, many short-lived temporaries.
    index = {}
    for pos, w in enumerate(vocab):
        index.setdefault(w[:2], []).append((pos, w, len(w)))
    sizes = sorted((k, len(v)) for k, v in index.items())
    print("index buckets:", len(index), "crc:", crc(sizes))

    # Nested structures built and torn down repeatedly.
    total = 0
    for round_no in range(40):
        table = [{"id": i, "tags": [vocab[(i * 7 + j) % len(vocab)] for j in range(i % 9)],
                  "score": (i * 2654435761 + round_no) % 1000003} for i in range(3000)]
        table.sort(key=lambda row: (row["score"], row["id"]))
        total = (total * 31 + sum(len(row["tags"]) for row in table[:100])) % 1000000007
        del table
    print("nested total:", total)

    # Sets and frozensets (ordering-independent output).
    groups = [frozenset(vocab[j] for j in range(i, i + 50)) for i in range(0, 15000, 25)]
    union = set().union(*groups)
    print("groups:", len(groups), "union:", len(union), "crc:", crc(sorted(union)))

    # String building and bytes.
    parts = [("%d:%s" % (i, vocab[i % len(vocab)])) * (i % 5 + 1) for i in range(50000)]
    blob = ",".join(parts).encode()
    print("blob bytes:", len(blob), "crc:", zlib.crc32(blob) & 0xFFFFFFFF)


if __name__ == "__main__":
    main()

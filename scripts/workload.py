"""An allocation-heavy Python workload for scripts/demo.

Builds dicts and lists of strings and ints, sorts them, round-trips them through JSON, and
prints a checksum of everything it computed, so two runs under different allocators can be
compared byte for byte. Deterministic: a fixed seed, no time or address in the output.
Usage: python3 workload.py [ROUNDS]
"""
import hashlib
import json
import random
import sys


def make_records(rng, n):
    """n small dicts, each with a few strings, ints and a short list."""
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
             for _ in range(2000)]
    return [{
        "id": i,
        "name": rng.choice(words) + "-" + str(rng.randrange(10**6)),
        "tags": [rng.choice(words) for _ in range(rng.randint(0, 6))],
        "score": rng.randrange(-10**9, 10**9),
        "ratio": round(rng.random(), 6),
    } for i in range(n)]


def one_round(rng, n):
    records = make_records(rng, n)
    by_name = {r["name"]: r for r in records}
    tag_count = {}
    for r in records:
        for t in r["tags"]:
            tag_count[t] = tag_count.get(t, 0) + 1
    ordered = sorted(records, key=lambda r: (r["score"], r["name"]))
    top_tags = sorted(tag_count.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    text = json.dumps({"ordered": ordered, "top": top_tags}, sort_keys=True)
    back = json.loads(text)
    assert back["ordered"][0]["id"] == ordered[0]["id"]
    joined = ",".join(sorted(by_name))
    return hashlib.sha256(text.encode() + joined.encode()).hexdigest()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    rng = random.Random(20240229)
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(one_round(rng, 40000).encode())
    print(f"rounds={rounds} checksum={digest.hexdigest()}")


if __name__ == "__main__":
    main()

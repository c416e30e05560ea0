"""Helpers for the seed generators of fuzz/seeds/<harness>.py.

Each generator describes its seeds as operation lists in the harness's input format and
writes them to fuzz/corpus/<harness>/seed-<name>. Run `python3 fuzz/seeds/<harness>.py` after
changing a harness's input format; the files are checked in."""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def write(harness, seeds):
    """seeds: dict name -> bytes. Replaces the seed-* files of the harness's corpus."""
    d = os.path.join(ROOT, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{harness}: {len(seeds)} seeds in {os.path.relpath(d, os.getcwd())}", file=sys.stderr)

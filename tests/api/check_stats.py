#!/usr/bin/env python3
"""check_stats.py PROG README WORKDIR KEY=VALUE...

Runs PROG (tests/api/api_stats.c) under HAKMEM_STATS=json:PATH and HAKMEM_STATS=1 and checks
what hakmem reports:
  - the JSON holds exactly the fields README.md documents (the `section.field` rows of its
    tables headed `| field |`), no more, no less, each object's members in the README's order;
  - totals are the sums of the classes plus the large allocations; live = allocs - frees;
  - the counts cover what PROG says it did (exactly, when hakmem does not own libc's malloc);
  - config matches the build (KEY=VALUE arguments, e.g. headerless=1 override=0);
  - in HAKMEM_DEBUG_HDRLESS builds each one-shot log that fired printed one line and counted
    every time it was reached ([REMOTE_DRAIN], and [HINT_LOOKUP] with the hint box);
  - the table (HAKMEM_STATS=1) has a column per documented classes[] counter and a line per
    object with its documented counters, in the README's order, and one row per used class;
  - a stats file that cannot be written, an empty json: path and an empty HAKMEM_TRACE warn and
    the program still exits 0.
Prints "FAIL: ..." and exits 1 on the first mismatch."""
import json
import os
import re
import subprocess
import sys


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run(prog, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    r = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"{prog} with {env_extra} exited {r.returncode}; stderr:\n{r.stderr}")
    return r


def documented_fields(readme):
    """The first column of README's tables headed `| field |`, in order."""
    text = open(readme, encoding="utf-8").read()
    tables = re.findall(r"^\| field \|.*\n((?:\|.*\n)*)", text, re.M)
    fields = [f for t in tables
              for f in re.findall(r"^\| `([a-z_]+(?:\[\])?\.[a-z_]+|[a-z_]+)` \|", t, re.M)]
    if len(fields) < 20:
        fail(f"README documents only {len(fields)} stats fields (table missing?)")
    if len(set(fields)) != len(fields):
        fail(f"README documents a field twice: {sorted(f for f in fields if fields.count(f) > 1)}")
    return fields


def json_fields(d):
    """The document's fields in its order; an array's members are those of each of its objects."""
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += [f"{k}.{f}" for f in v]
        elif isinstance(v, list):
            members = [list(item) for item in v]
            if any(m != members[0] for m in members):
                fail(f"the objects of {k}[] differ in their members")
            out += [f"{k}[].{f}" for f in (members[0] if members else [])]
        else:
            out.append(k)
    return out


def by_object(fields):
    """{object: its members in order}; top-level fields under ""."""
    out = {}
    for f in fields:
        obj, _, member = f.rpartition(".")
        out.setdefault(obj, []).append(member)
    return out


def check_logs(d, stderr, config):
    """One-shot logs: each site that fired printed exactly one line and counted the rest."""
    logs = {e["tag"]: e["count"] for e in d["one_shot_logs"]}
    if config.get("debug_hdrless") != 1:
        if logs:
            fail(f"one-shot logs in a build without them: {logs}")
        return
    want = {"[REMOTE_DRAIN]"} | ({"[HINT_LOOKUP]"} if config.get("tls_hint") == 1 else set())
    if not want <= set(logs):
        fail(f"one-shot logs {sorted(want - set(logs))} did not fire: {logs}")
    for tag, count in logs.items():
        printed = sum(1 for l in stderr.splitlines() if l.startswith(f"hakmem: {tag} "))
        if printed != 1:
            fail(f"{tag} printed {printed} times (reached {count}); a one-shot log prints once")
        if tag in want and count < 2:
            fail(f"{tag} reached only {count} times: the workload should reach it repeatedly")


def check_json(d, did, config):
    t, large, classes = d["totals"], d["large"], d["classes"]
    for key, want in config.items():
        if d["config"].get(key) != want:
            fail(f"config.{key} is {d['config'].get(key)}, the build says {want}")
    for f in ("allocs", "frees", "live_bytes"):
        total = sum(c[f] for c in classes) + large[f if f != "live_bytes" else "live_bytes"]
        if t[f] != total:
            fail(f"totals.{f} {t[f]} != classes + large {total}")
    if t["live_blocks"] != t["allocs"] - t["frees"]:
        fail(f"totals.live_blocks {t['live_blocks']} != allocs - frees")
    for c in classes:
        if c["live_blocks"] != c["allocs"] - c["frees"] or c["live_bytes"] != c["live_blocks"] * c["block_size"]:
            fail(f"class {c['class']}: live counts inconsistent: {c}")
        if c["registry_lookups"] != c["frees"] - c["hint_hits"]:
            fail(f"class {c['class']}: registry_lookups != frees - hint_hits: {c}")
    exact = config.get("override") == 0  # hakmem sees only the program's own calls
    pairs = [("allocs", t["allocs"]), ("frees", t["frees"]), ("remote_frees", t["remote_frees"]),
             ("large_allocs", large["allocs"]), ("live_blocks", t["live_blocks"])]
    for name, got in pairs:
        want = did[name]
        if (got != want) if exact else (got < want):
            fail(f"{name}: hakmem says {got}, the program did {want} ({'exact' if exact else 'at least'})")
    if t["threads_exited"] < did["threads"]:
        fail(f"threads_exited {t['threads_exited']} < {did['threads']}")
    if t["remote_drains"] == 0 or t["drained_blocks"] == 0:
        fail("remote frees were never drained")
    if config.get("tls_hint") == 1:
        if t["hint_hits"] == 0:
            fail("hint box compiled in but no hint hits")
    elif t["hint_hits"] != 0 or t["hint_misses"] != 0:
        fail("hint counters moved without the hint box")
    m = d["memory"]
    if m["peak_rss_bytes"] <= 0 or m["mapped_bytes"] <= 0 or m["superslabs_mapped"] < 1:
        fail(f"memory totals empty: {m}")
    if d["pid"] <= 0 or not re.fullmatch(r"\d+\.\d+\.\d+", d["version"]):
        fail(f"pid/version: {d['pid']} {d['version']}")


def check_table(stderr, documented):
    lines = stderr.splitlines()
    objects = by_object(documented)
    head = [l for l in lines if re.match(r"hakmem: class ", l)]
    if len(head) != 1:
        fail(f"table header missing:\n{stderr}")
    cols = head[0].split()[1:]
    want = ["class"] + [f for f in objects["classes[]"] if f != "class"]
    if cols != want:
        fail(f"table columns {cols}, README documents {want}")
    rows = [l.split()[1:] for l in lines if re.match(r"hakmem: +\d+ +\d+ ", l)]
    if not rows or any(len(r) != len(cols) for r in rows):
        fail(f"table rows missing or ragged:\n{stderr}")
    remote = cols.index("remote_frees")
    if max(int(r[remote]) for r in rows) < 800:
        fail("no class row shows the 800 remote frees")
    for obj, want in objects.items():
        if obj in ("", "config") or obj.endswith("[]"):
            continue
        items = [kv.split("=") for l in lines if l.startswith(f"hakmem: {obj} ") for kv in l.split()[2:]]
        if [k for k, _ in items] != want or not all(v.isdigit() for _, v in items):
            fail(f"table lines of {obj}: {items}, README documents {want}")


def main():
    prog, readme, work = sys.argv[1:4]
    config = {k: int(v) for k, v in (a.split("=") for a in sys.argv[4:])}
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "stats.json")
    if os.path.exists(path):
        os.unlink(path)
    r = run(prog, {"HAKMEM_STATS": f"json:{path}"})
    did = json.loads(r.stdout.strip().splitlines()[-1])
    try:
        d = json.load(open(path))
    except (OSError, ValueError) as e:
        fail(f"no valid JSON at {path}: {e}")
    documented, got = documented_fields(readme), json_fields(d)
    # An empty array shows no member fields: only its documented members are left unchecked.
    empty = {k for k, v in d.items() if isinstance(v, list) and not v}
    want = [f for f in documented if f.split("[]")[0] not in empty or "[]" not in f]
    missing_top = {f.split(".")[0].split("[]")[0] for f in want} - set(d)
    if missing_top:
        fail(f"documented but missing: {sorted(missing_top)}")
    if set(got) != set(want):
        fail(f"fields not documented: {sorted(set(got) - set(want))}; "
             f"documented but missing: {sorted(set(want) - set(got))}")
    for obj, members in by_object(got).items():
        if members != by_object(want)[obj]:
            fail(f"{obj or 'the document'}: members {members}, README's order {by_object(want)[obj]}")
    check_json(d, did, config)
    check_logs(d, r.stderr, config)
    check_table(run(prog, {"HAKMEM_STATS": "1"}).stderr, documented)
    bad = {"HAKMEM_STATS": "json:/nonexistent-dir/stats.json"}
    if "hakmem: warning: cannot write the statistics file: /nonexistent-dir/stats.json" not in run(prog, bad).stderr:
        fail("no warning for an unwritable stats file")
    for env, what in (({"HAKMEM_STATS": "json:"}, "HAKMEM_STATS=json:"), ({"HAKMEM_TRACE": ""}, "HAKMEM_TRACE=")):
        err = run(prog, env).stderr
        if not re.search(r"hakmem: warning: .*" + re.escape(what) + r"$", err, re.M):
            fail(f"no warning for {what}: {err!r}")
    print(f"stats ok: {len(got)} fields, totals.allocs={d['totals']['allocs']}")


main()

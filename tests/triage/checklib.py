"""What the triage checkers share: every check runs, each failure becomes one "FAIL:" line,
and the last line says "... check ok" only when none failed (ctest looks for it); reading
hakmem-triage's report by its sections and Result lines."""

import re

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def finish(name):
    """Prints the failures; returns the exit status."""
    for f in failures:
        print("FAIL: " + f)
    if failures:
        return 1
    print("%s check ok" % name)
    return 0


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def sections(text):
    """Section title -> its lines, from the '=== title ===' headers."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.fullmatch(r"=== (.*) ===", line)
        if m:
            current = m.group(1)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def section(parts, prefix):
    """The lines of the first section whose title starts with prefix (titles may carry the
    run they are about: 'CRASH REPORT (TC3 ... run 2/5)')."""
    return next((lines for title, lines in parts.items() if title.startswith(prefix)), None)


def rates(result):
    """A Result line's rates ('crash (SIGSEGV) 2/5, hang 1/5') as [(outcome, count, runs)],
    or None when it does not read as rates."""
    found = []
    for part in result.split(", "):
        m = re.fullmatch(r"(.+) (\d+)/(\d+)", part)
        if m is None:
            return None
        found.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return found


def config_results(parts, titles):
    """Title -> the rates of its one Result line (None when missing or not one line)."""
    out = {}
    for title in titles:
        lines = parts.get(title) or []
        results = [line[len("Result: "):] for line in lines if line.startswith("Result: ")]
        check(len(results) == 1, "%s: %d Result lines" % (title, len(results)))
        out[title] = rates(results[0]) if len(results) == 1 else None
        check(len(results) != 1 or out[title] is not None,
              "%s: Result %r does not read as rates" % (title, results[:1]))
    return out

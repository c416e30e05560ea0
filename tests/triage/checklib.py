"""What the triage checkers share: every check runs, each failure becomes one "FAIL:" line,
and the last line says "... check ok" only when none failed (ctest looks for it)."""

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

#!/usr/bin/env python3
"""Judges an Autobahn|Testsuite fuzzingclient run: scripts/autobahn_report.py INDEX_JSON

INDEX_JSON is reports/servers/index.json ({agent: {case id: {behavior, behaviorClose, duration,
remoteCloseCode, reportfile}}}); each case's own report (the reportfile beside it) says how the
connection ended (wasClean, droppedByMe, closedByMe, local and remote close codes and reasons).

The gateway is not an echo server, so `behavior` (the payload check) is counted but not judged.
A case passes when its `behaviorClose` is OK, NON-STRICT or INFORMATIONAL and its close was clean
(wasClean: close frames both ways, then the server dropped TCP). Prints the counts per verdict,
the failing cases grouped by what happened, and a closing `autobahn: N passed, N failed` line;
exits 1 when a case failed or the report is missing.
"""

import json
import os
import re
import sys
from collections import Counter, OrderedDict

PASSING_CLOSE = {"OK", "NON-STRICT", "INFORMATIONAL"}
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "WRONG CODE", "UNCLEAN"]


def case_key(case_id):
    return [int(part) if part.isdigit() else part for part in case_id.split(".")]


def counts(counter):
    names = [n for n in ORDER if n in counter] + sorted(n for n in counter if n not in ORDER)
    return ", ".join("%s %d" % (n, counter[n]) for n in names) or "none"


def code(value):
    return "none" if value is None else str(value)


def codes_text(codes):
    return "/".join(str(c) for c in codes) or "any code"


def expected_close(report):
    """What Autobahn expected of the close, in words that group alike cases."""
    exp = report.get("expectedClose") or {}
    codes = list(exp.get("closeCode", []))
    clean = "clean" if exp.get("requireClean") else "clean or not"
    if exp.get("closedByMe"):
        mine = report.get("localCloseCode")
        others = [c for c in codes if c != mine]
        if report.get("failedByMe") and mine == 1001 and mine not in codes:
            options = ["Close %s" % codes_text(codes), "an echo of the client's 1001"]
        elif mine in codes:
            options = ["an echo of the client's code"] + (["Close %s" % codes_text(others)] if others else [])
        else:
            options = ["Close %s" % codes_text(codes)]
        answer = ", ".join(options) + " or an empty Close"
        return "the client closes, the server answers with %s, then drops TCP (%s)" % (answer, clean)
    return "the server fails the connection: Close %s, then drops TCP (%s)" % (codes_text(codes), clean)


def what_happened(report):
    """How the connection ended, in words that group alike cases."""
    parts = []
    remote = report.get("remoteCloseCode")
    if remote is None:
        parts.append("no Close from the server")
    else:
        reason = report.get("remoteCloseReason")
        parts.append("server Close %s%s" % (remote, ' "%s"' % reason if reason else ""))
    if report.get("droppedByMe"):
        parts.append("the client dropped TCP")
    elif not report.get("wasClean"):
        why = report.get("wasNotCleanReason") or "unclean"
        parts.append("unclean: %s" % re.sub(r"\s+", " ", str(why)).strip())
    else:
        parts.append("clean")
    for flag, words in (
        ("wasServerConnectionDropTimeout", "the server did not drop TCP in time"),
        ("wasCloseHandshakeTimeout", "the closing handshake timed out"),
        ("wasOpenHandshakeTimeout", "the opening handshake timed out"),
    ):
        if report.get(flag):
            parts.append(words)
    if (report.get("expectedClose") or {}).get("closedByMe") and report.get("closedByMe"):
        how = "gave up waiting for an echo and " if report.get("failedByMe") else ""
        parts.insert(0, "the client %ssent Close" % how)
    return "; ".join(parts)


def echoed_going_away(verdict, report):
    """WRONG CODE that is no fault of the server: the client, given no echo, failed the
    connection with 1001 (its timeout path) and the server echoed that 1001, cleanly."""
    return (
        verdict == "WRONG CODE"
        and (report.get("expectedClose") or {}).get("closedByMe")
        and report.get("failedByMe")
        and report.get("localCloseCode") == 1001
        and report.get("remoteCloseCode") == 1001
        and report.get("wasClean")
    )


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    index_path = argv[1]
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("autobahn: no readable report at %s (%s)" % (index_path, e))
        return 1
    folder = os.path.dirname(index_path)
    status = 0
    for agent, cases in sorted(index.items()):
        ids = sorted(cases, key=case_key)
        behavior = Counter(cases[c].get("behavior") for c in ids)
        behavior_close = Counter(cases[c].get("behaviorClose") for c in ids)
        unclean = 0
        echoed = 0
        failures = OrderedDict()  # (behaviorClose, expected, happened) -> [case ids]
        for cid in ids:
            entry = cases[cid]
            report = {}
            try:
                with open(os.path.join(folder, entry.get("reportfile", ""))) as f:
                    report = json.load(f)
            except (OSError, ValueError):
                report = {"wasClean": None, "wasNotCleanReason": "per-case report missing"}
            clean = bool(report.get("wasClean"))
            unclean += not clean
            verdict = entry.get("behaviorClose")
            if verdict in PASSING_CLOSE and clean:
                continue
            if echoed_going_away(verdict, report):
                echoed += 1
                continue
            key = (expected_close(report), what_happened(report))
            failures.setdefault(key, []).append((cid, verdict, report.get("localCloseCode")))

        failed = sum(len(v) for v in failures.values())
        print("autobahn: agent %s, %d cases" % (agent, len(ids)))
        print("  behavior (payload checks, not judged: the gateway does not echo): %s" % counts(behavior))
        print("  behaviorClose: %s" % counts(behavior_close))
        print("  clean closes: %d of %d" % (len(ids) - unclean, len(ids)))
        if echoed:
            print(
                "  passed although WRONG CODE: %d (the client, given no echo, closed with 1001 and"
                " the server echoed 1001 cleanly)" % echoed
            )
        if failures:
            print("failing cases (behaviorClose not OK/NON-STRICT/INFORMATIONAL, or an unclean close):")
            groups = sorted(failures.items(), key=lambda kv: case_key(kv[1][0][0]))
            for n, ((expected, happened), group) in enumerate(groups, 1):
                verdicts = counts(Counter(v for _, v, _ in group))
                print("  %d. %d case(s), behaviorClose %s:" % (n, len(group), verdicts))
                print("     expected: %s" % expected)
                print("     got:      %s" % happened)
                sent = {mine for _, _, mine in group}
                if len(sent) > 1:  # the client's own Close code is what these cases vary
                    listed = ["%s (client %s)" % (c, "no code" if m is None else m) for c, _, m in group]
                else:
                    listed = [c for c, _, _ in group]
                    if "the client" in happened and sent != {None}:
                        happened_code = sent.pop()
                        print("     client's Close code: %s" % code(happened_code))
                print("     cases:    %s" % " ".join(listed))
        print("autobahn: %d passed, %d failed" % (len(ids) - failed, failed))
        if failed or not ids:
            status = 1
    if not index:
        print("autobahn: the report names no agent")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))

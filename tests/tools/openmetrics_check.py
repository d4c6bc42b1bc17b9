#!/usr/bin/env python3
"""Strict OpenMetrics 1.0.0 check of the exposition on stdin.

Parses it with prometheus_client's OpenMetrics parser, which enforces the
specification (family and sample names, counter `_total`, histogram bucket
order and `+Inf`, exemplar syntax and label length, the final `# EOF`), and
prints what it found: one line per family with its type, and one line per
exemplar. Exits 1 with the parser's message on the first error.
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        for family in text_string_to_metric_families(text):
            print(f"family {family.name} {family.type}")
            for sample in family.samples:
                if sample.exemplar is not None:
                    e = sample.exemplar
                    labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
                    print(f"exemplar {sample.name} {labels} {e.value} {e.timestamp}")
    except Exception as exc:  # the parser raises ValueError and friends
        print(f"invalid OpenMetrics: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The conformance report: a JSON document and a readable HTML page.

Both hold the same content: the sandbox's parameters (no secret: the client id, the
declared scopes, the loopback base URL), the command, each criterion's verdict with its
observations, the faults injected, and every exchange as :class:`Exchange` records it
(names of parameters and headers, never a token's value, never a document's content).
Every text of the HTML page is escaped.
"""

from __future__ import annotations

import html
import json
from typing import Any

import attrs

from .._version import __version__
from ._criteria import Criterion, Status, Verdict
from ._recorder import Exchange

__all__ = ["Report", "report_html", "report_json"]


@attrs.frozen
class Report:
    """The outcome of a conformance run.

    :param command: the vendor's command, as run.
    :param base_url: the sandbox's base URL (loopback).
    :param client_id: the app's client id in the sandbox.
    :param declared_scopes: the scopes of its convention.
    :param verdicts: every criterion with its verdict.
    :param exchanges: what the app did.
    :param exit_status: the command's exit status; ``None`` when stopped at the time limit.
    :param duration: the run's length, in seconds.
    """

    command: tuple[str, ...]
    base_url: str
    client_id: str
    declared_scopes: tuple[str, ...]
    verdicts: tuple[tuple[Criterion, Verdict], ...]
    exchanges: tuple[Exchange, ...]
    exit_status: int | None
    duration: float

    @property
    def passed(self) -> bool:
        """Whether every mandatory criterion passed."""
        return all(v.status is Status.PASS for c, v in self.verdicts if c.mandatory)

    @property
    def failed(self) -> list[str]:
        """The ids of the mandatory criteria that did not pass."""
        return [c.id for c, v in self.verdicts if c.mandatory and v.status is not Status.PASS]

    def verdict(self, criterion_id: str) -> Verdict:
        """The verdict on the criterion *criterion_id*."""
        for criterion, verdict in self.verdicts:
            if criterion.id == criterion_id:
                return verdict
        raise KeyError(criterion_id)

    def summary(self) -> str:
        """A few lines for a terminal: one per criterion, then the outcome."""
        ended = (
            f"exited with status {self.exit_status}"
            if self.exit_status is not None
            else "was stopped at the time limit"
        )
        lines = [
            f"the command {ended} after {self.duration:.1f} s, "
            f"{len(self.exchanges)} requests recorded"
        ]
        for criterion, verdict in self.verdicts:
            kind = "mandatory" if criterion.mandatory else "optional"
            lines.append(f"{verdict.status.value.upper():>12}  {criterion.id} ({kind})")
        outcome = "PASSED" if self.passed else "FAILED: " + ", ".join(self.failed)
        lines.append(f"conformance {outcome}")
        return "\n".join(lines)


def _criterion_json(criterion: Criterion, verdict: Verdict) -> dict[str, Any]:
    return {
        "id": criterion.id,
        "title": criterion.title,
        "mandatory": criterion.mandatory,
        "status": verdict.status.value,
        "observations": list(verdict.observations),
        "exchanges": list(verdict.exchanges),
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dictionary."""
    return {
        "kit": f"monespace {__version__}",
        "passed": report.passed,
        "failed_mandatory": report.failed,
        "sandbox": {
            "base_url": report.base_url,
            "client_id": report.client_id,
            "declared_scopes": list(report.declared_scopes),
        },
        "command": list(report.command),
        "exit_status": report.exit_status,
        "duration_seconds": round(report.duration, 2),
        "criteria": [_criterion_json(c, v) for c, v in report.verdicts],
        "faults": [
            {"seq": e.seq, "fault": e.fault, "status": e.status, "route": e.route}
            for e in report.exchanges
            if e.fault
        ],
        "exchanges": [e.as_json() for e in report.exchanges],
    }


def dumps(report: Report) -> str:
    """The JSON report as text."""
    return json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}
.pass{color:#0a6b2d}.fail{color:#a3000b}.not_observed{color:#7a4a00}
code{font-size:.9em}
"""


def report_html(report: Report) -> str:
    """The report as a self-contained HTML page (every text escaped)."""
    e = html.escape
    status = (
        str(report.exit_status)
        if report.exit_status is not None
        else "none: stopped at the time limit"
    )
    outcome = (
        "Every mandatory criterion passed."
        if report.passed
        else "Mandatory criteria not passed: " + ", ".join(report.failed) + "."
    )
    rows = []
    for criterion, verdict in report.verdicts:
        observations = "".join(f"<li>{e(o)}</li>" for o in verdict.observations)
        rows.append(
            f"<tr><td><code>{e(criterion.id)}</code><br>{e(criterion.title)}</td>"
            f"<td>{'mandatory' if criterion.mandatory else 'optional'}</td>"
            f'<td class="{e(verdict.status.value)}">{e(verdict.status.value.replace("_", " "))}'
            "</td>"
            f"<td><ul>{observations}</ul></td></tr>"
        )
    exchanges = []
    for x in report.exchanges:
        params = " ".join(f"{k}={v}" for k, v in sorted(x.params.items()))
        exchanges.append(
            "<tr>"
            + "".join(
                f"<td>{e(str(cell))}</td>"
                for cell in (
                    x.seq,
                    f"{x.at:.2f}",
                    x.method,
                    x.route,
                    ", ".join(x.query_keys + x.form_keys),
                    params,
                    x.token or "",
                    x.status,
                    x.fault or "",
                )
            )
            + "</tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Conformance report: {e(report.client_id)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>Conformance report</h1>
<p>This report comes from the monespace <strong>sandbox</strong>: synthetic patients, an
automatic consent, faults injected on purpose. It records what the app did, never a token's
value nor a document's content.</p>
<p class="{"pass" if report.passed else "fail"}"><strong>{e(outcome)}</strong></p>
<dl>
<dt>Command</dt><dd><code>{e(" ".join(report.command))}</code>
(exit status {e(status)},
{report.duration:.1f} s)</dd>
<dt>Client id</dt><dd><code>{e(report.client_id)}</code></dd>
<dt>Declared scopes</dt><dd><code>{e(" ".join(report.declared_scopes))}</code></dd>
</dl>
<h2>Criteria</h2>
<table><thead><tr><th scope="col">Criterion</th><th scope="col">Kind</th>
<th scope="col">Outcome</th><th scope="col">Observations</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>What the app did</h2>
<table><thead><tr><th scope="col">#</th><th scope="col">At (s)</th><th scope="col">Method</th>
<th scope="col">Route</th><th scope="col">Parameters sent</th><th scope="col">Values kept</th>
<th scope="col">Token</th><th scope="col">Status</th><th scope="col">Fault injected</th>
</tr></thead>
<tbody>{"".join(exchanges)}</tbody></table>
</body></html>
"""

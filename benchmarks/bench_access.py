"""Benchmark of professional access: access decisions, and what the policy adds to a read.

Run ``python benchmarks/bench_access.py`` (about 90 seconds; ``--quick`` for a noisier run of
about 15 seconds, ``--json PATH`` to keep the figures).

- Access decisions per second by the pure ``monespace.access.decide(actor, action, resource,
  facts, rules)``, with the facts prepared in advance, for four cases that stop at different
  depths of the rule chain (an authorised professional reading a document, the holder
  reading theirs, a V-level document in an emergency, the operator asking for health
  content). Baseline: one hand-written function answering the same four cases with plain
  ``if`` statements, checked to give the same answers (what the decision costs without the
  chain of named rules).
- Latency (p50 and p99) of an authorised professional reading a record of 1,000 documents:
  every page of ``space.record.search(professional, patient_id, limit=50)`` (20 calls, each
  deciding on every document of the record before cutting its page) and
  ``list(space.record.documents_of(professional, patient_id))`` (one call), against
  the same reads with the policy bypassed **in this benchmark only**: ``decide`` patched to
  allow everything, the facts about the professional and the documents not looked up. The
  two sides return the same 1,000 documents and write the same audit events.

The database lives in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import monespace
import monespace._unit as core_module
import monespace.record._service as record_module
from _common import (
    Figure,
    Report,
    compare,
    describe_machine,
    parser,
    print_grid,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import AccessMode, Actor, ActorKind
from monespace.access import (
    AccessPolicy,
    Action,
    Decision,
    DocumentFacts,
    Facts,
    Professional,
    ProfessionalFacts,
    Resource,
    decide,
    default_rules,
)
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.record import LOINC, Code
from monespace.testing import storage_of

RECORD_SIZE = 1000
PAGE = 50
OPERATOR = Actor.system("bench")
AUTHOR = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000001").value)
READER = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000002").value)
TYPES = (Code("11502-2", LOINC), Code("18748-4", LOINC), Code("57833-6", LOINC))


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


# --- decisions ------------------------------------------------------------------------------


def decision_cases() -> list[tuple[str, Actor, Action, Resource, Facts]]:
    """Four requests, with the facts a service would have looked up."""
    patient = "patient-1"
    document = DocumentFacts(author_kind="professional", author_id=AUTHOR.id, class_code="10",
                             type_code="11502-2")  # fmt: skip
    restricted = DocumentFacts(author_kind="professional", author_id=AUTHOR.id, class_code="10",
                               type_code="11502-2", confidentiality="V")  # fmt: skip
    authorised = ProfessionalFacts(registered=True, profession="10", grant="authorised")
    urgent = ProfessionalFacts(registered=True, profession="10", emergency=True)
    resource = Resource(patient, "document", "doc-1")
    return [
        (
            "authorised professional, document",
            READER,
            Action.DOCUMENT_READ,
            resource,
            Facts(space_open=True, document=document, professional=authorised),
        ),
        (
            "holder, own document",
            Actor.patient(patient),
            Action.DOCUMENT_READ,
            resource,
            Facts(space_open=True, document=document),
        ),
        (
            "emergency, V-level document",
            Actor(ActorKind.PROFESSIONAL, READER.id, mode=AccessMode.EMERGENCY),
            Action.DOCUMENT_READ,
            resource,
            Facts(space_open=True, document=restricted, professional=urgent),
        ),
        (
            "operator, document (denied)",
            OPERATOR,
            Action.DOCUMENT_READ,
            resource,
            Facts(space_open=True, document=document),
        ),
    ]


def hand_written(actor: Actor, resource: Resource, facts: Facts) -> bool:
    """The same four answers as plain ``if`` statements (no rule objects, no Decision)."""
    document = facts.document
    if document is None or document.deleted or not facts.space_open:
        return False
    if actor.kind is ActorKind.PATIENT:
        return actor.id == resource.patient_id and not document.hidden_from_patient
    if actor.kind is not ActorKind.PROFESSIONAL:
        return False
    pro = facts.professional
    if pro is None or not pro.registered or pro.blocked:
        return False
    if actor.mode is not AccessMode.NORMAL:
        return (
            pro.emergency
            and not pro.object_emergency
            and not pro.mask_all
            and document.confidentiality != "V"
        )
    if pro.object_all or pro.grant is None or pro.mask_all:
        return False
    return not document.masked and document.confidentiality != "V"


def bench_decisions(seconds: float, repeat: int) -> list[Figure]:
    rules = default_rules(AccessPolicy())
    figures = []
    for name, actor, action, resource, facts in decision_cases():
        expected = decide(actor, action, resource, facts, rules)
        assert expected.allowed == hand_written(actor, resource, facts), name
        progress(f"decide: {name} ({expected.rule})")

        def op(n: int, actor=actor, action=action, resource=resource, facts=facts) -> None:
            for _ in range(n):
                decide(actor, action, resource, facts, rules)

        def raw(n: int, actor=actor, resource=resource, facts=facts) -> None:
            for _ in range(n):
                hand_written(actor, resource, facts)

        ours, theirs = compare(op, raw, seconds=seconds, repeat=repeat)
        asked = (i for i, r in enumerate(rules, 1) if r(actor, action, resource, facts))
        depth = next(asked, len(rules))
        figures.append(
            Figure(
                f"decide: {name}",
                "decisions/s",
                ours,
                theirs,
                "one hand-written function with plain if statements, same answers",
                note=f"rule {expected.rule}, {depth} of {len(rules)} rules asked",
            )
        )
    return figures


# --- reading a record -----------------------------------------------------------------------


def open_space(path: Path) -> monespace.Space:
    return monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    )


def fill(space: monespace.Space) -> str:
    """A patient with 1,000 documents by one physician, and a second physician they
    authorised (who reads everything: the policy is asked, and allows, 1,000 times)."""
    for actor, name in ((AUTHOR, "Dr Auteur"), (READER, "Dr Lecteur")):
        space.access.register_professional(OPERATOR, Professional(actor.id, "10", name))
    traits = INSTraits(birth_name="DURAND", first_given_name="MARIE",
                       birth_date=date(1980, 5, 12), sex="F")  # fmt: skip
    identity = PatientIdentity(
        INS(NIR.build("F", 80, 5, "75", 112, 1), INS_NIR_TEST_OID, traits),
        Contact(email="patient@example.org"),
    )
    patient_id = space.accounts.register_patient(OPERATOR, identity).id
    space.accounts.create_space(OPERATOR, patient_id)
    space.access.authorise(Actor.patient(patient_id), patient_id, READER.id)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    payload = b"%PDF-1.7\n" + bytes(4087)
    for i in range(RECORD_SIZE):
        space.record.add_document(
            AUTHOR,
            patient_id,
            payload,
            media_type="application/pdf",
            type_code=TYPES[i % len(TYPES)],
            title=f"Compte rendu n°{i}",
            created_at=start + timedelta(days=3 * i),
        )
    return patient_id


_ALLOW = Decision(True, "benchmark_bypass")
_NO_FACTS = Facts(space_open=True)


@contextmanager
def policy_bypassed() -> Iterator[None]:
    """The policy switched off (benchmark only): every decision allows, and neither the
    professional's standing (grants, blocks, settings, sessions) nor the documents' facts
    are looked up."""
    saved = (core_module.decide, record_module.decide, core_module.Unit.facts)
    core_module.decide = record_module.decide = lambda *args, **kwargs: _ALLOW  # type: ignore[assignment]
    # Unit.facts also derives the facts of the document (or thread) it is given.
    core_module.Unit.facts = lambda self, actor, resource, **about: _NO_FACTS  # type: ignore[method-assign]
    try:
        yield
    finally:
        core_module.decide, record_module.decide, core_module.Unit.facts = saved


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1e3, cuts[98] * 1e3


def bench_reading(work: Path, runs: int) -> list[dict[str, object]]:
    progress(f"filling a record with {RECORD_SIZE:,} documents")
    space = open_space(work / "access.db")
    patient_id = fill(space)
    search = space.record.search

    def all_pages() -> int:
        seen, offset = 0, 0
        while True:
            page = search(READER, patient_id, offset=offset, limit=PAGE)
            seen += len(page.documents)
            offset += PAGE
            if offset >= page.total:
                return seen

    def documents_of() -> int:
        return len(list(space.record.documents_of(READER, patient_id)))

    assert all_pages() == documents_of() == RECORD_SIZE
    with policy_bypassed():
        assert all_pages() == documents_of() == RECORD_SIZE
    with storage_of(space).read() as tx:
        events_before = tx.audit.count()
    results = []
    for name, op, calls in (
        (f"search, all {RECORD_SIZE // PAGE} pages of {PAGE}", all_pages, RECORD_SIZE // PAGE),
        (f"documents_of, all {RECORD_SIZE:,} (one call)", documents_of, 1),
    ):
        progress(f"latency of {name} ({runs} runs each side)")
        ours: list[float] = []
        bypassed: list[float] = []
        for i in range(runs + 3):  # 3 warm-up runs each
            start = time.perf_counter()
            op()
            elapsed = time.perf_counter() - start
            with policy_bypassed():
                start = time.perf_counter()
                op()
                elapsed_bypassed = time.perf_counter() - start
            if i >= 3:
                ours.append(elapsed)
                bypassed.append(elapsed_bypassed)
        p50, p99 = percentiles(ours)
        b50, b99 = percentiles(bypassed)
        results.append(
            {
                "name": name,
                "calls": calls,
                "p50_ms": p50,
                "p99_ms": p99,
                "bypassed_p50_ms": b50,
                "bypassed_p99_ms": b99,
                "ratio_p50": p50 / b50,
                # each call decides once for the record, then once per document
                "decisions": calls * (1 + RECORD_SIZE),
                "added_per_decision_us": (p50 - b50) * 1e3 / (calls * (1 + RECORD_SIZE)),
                "runs": runs,
            }
        )
    with storage_of(space).read() as tx:
        # Both sides write one audit event per search call: the bypass removes no write.
        assert tx.audit.count() > events_before
    assert space.audit.verify().ok
    space.close()
    return results


def show_latencies(results: list[dict[str, object]], *, markdown: bool) -> None:
    header = ["figure", "p50 ms", "p99 ms", "bypassed p50", "bypassed p99", "p50 ratio",
              "decisions", "added per decision"]  # fmt: skip
    rows = [
        [
            str(r["name"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['bypassed_p50_ms']:.1f}",
            f"{r['bypassed_p99_ms']:.1f}",
            f"{r['ratio_p50']:.2f}x",
            f"{r['decisions']:,}",
            f"{r['added_per_decision_us']:.1f} µs",
        ]
        for r in results
    ]
    print(
        f"\nAn authorised professional reading a record of {RECORD_SIZE:,} documents "
        "(latency, lower is better)\n"
    )
    print_grid(header, rows, markdown=markdown)
    print(
        "\nbypassed = the same calls with decide() patched to allow and no facts looked up "
        f"(benchmark only); {results[0]['runs']} runs per side, interleaved"
    )


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.quick:
        seconds, repeat, runs = 0.1, 3, 30
    else:
        seconds, repeat, runs = 0.8, 5, 100
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "attrs"),
        extra={"revision": revision(Path(__file__).parent)},
    )
    report = Report(
        script="benchmarks/bench_access.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "record_size": RECORD_SIZE,
            "page": PAGE,
            "latency_runs": runs,
        },
    )
    print(f"monespace access benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        figures = bench_decisions(seconds, repeat)
        reading = bench_reading(work, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    report.figures = figures
    print(
        f"\nMedians of {repeat} repeats of ~{seconds} s each; ratio = monespace / baseline "
        "(1.00x: as fast as the hand-written function); spread = (max - min) / median."
    )
    show(figures, title="Access decisions (pure decide, facts given)", markdown=args.markdown)
    show_latencies(reading, markdown=args.markdown)
    print(f"\nmeasured in {elapsed:.0f} s")
    report.extra["reading"] = reading
    report.save(args.json)


if __name__ == "__main__":
    main()

"""Benchmark of the agenda: reminder evaluation, the reminders' tick, and the iCalendar export.

Run ``python benchmarks/bench_agenda.py`` (about a minute; ``--quick`` for a noisier run of
about 15 seconds, ``--json PATH`` to keep the figures). Figures:

- people evaluated per second by ``monespace.agenda.evaluate`` (the whole 2025 calendar, 67
  rules, for people of every age, each with a few vaccinations done) versus a raw Python
  loop over the same people computing, for each rule, the age bounds in whole months and
  comparing them with the evaluation date (what a hand-written reminder query does, without
  proofs, seasons, intervals or reasons);
- the wall time of ``space.tick`` queueing the reminders of N people on an SQLite file (a
  first tick, which queues, and a second, which finds nothing new), in people per second;
- events exported per second by ``space.agenda.export_ics`` for a 1,000-event agenda
  (decrypting each event, building the VCALENDAR with ``icalendar``) versus the same
  VEVENT lines written with f-strings from the same rows.

The databases live in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import monespace
from _common import Figure, Rates, Report, compare, describe_machine, parser, print_machine
from _common import print_table as show
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
from monespace.agenda import Act, EventKind, Person, evaluate, load_edition
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits

AT = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OPERATOR = Actor.system("bench")


def people(count: int) -> list[Person]:
    """People born over 90 years, alternating sexes, with two vaccinations each."""
    found = []
    for n in range(count):
        born = AT - dt.timedelta(days=(n * 977) % (90 * 365) + 1)
        acts = (
            Act(on=born + dt.timedelta(days=65), system="atc", code="J07CA09"),
            Act(on=born + dt.timedelta(days=370), system="atc", code="J07BD52"),
        )
        found.append(Person(birth_date=born, sex="F" if n % 2 else "M", acts=acts))
    return found


def bench_evaluation(count: int, seconds: float, repeat: int) -> Figure:
    pack = load_edition()
    crowd = people(count)
    bounds = [
        (
            rule.due_from.years * 12 + rule.due_from.months,
            None if rule.due_until is None else rule.due_until.years * 12 + rule.due_until.months,
            rule.sex,
        )
        for rule in pack.rules
    ]

    def ours(n: int) -> None:
        for i in range(n):
            evaluate(pack, crowd[i % count], AT)

    def raw(n: int) -> None:
        for i in range(n):
            person = crowd[i % count]
            months = (AT.year - person.birth_date.year) * 12 + AT.month - person.birth_date.month
            due = 0
            for start, end, sex in bounds:
                if sex in ("any", person.sex) and start <= months and (end is None or months < end):
                    due += 1

    value, baseline = compare(ours, raw, seconds=seconds, repeat=repeat)
    return Figure(
        "reminder evaluation",
        "people/s",
        value,
        baseline,
        "raw loop: ages in months against each rule's bounds",
    )


def _identity(n: int) -> PatientIdentity:
    born = dt.date(1940 + n % 85, 1 + n % 12, 1 + n % 28)
    nir = NIR.build("F" if n % 2 else "M", born.year % 100, born.month, "75", "056", 1 + n % 999)
    traits = INSTraits(
        birth_name=f"BENCH{n}",
        first_given_name="ALEX",
        birth_date=born,
        sex="F" if n % 2 else "M",
    )
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=f"p{n}@example.org"))


def bench_tick(work: Path, count: int) -> tuple[Figure, dict[str, float]]:
    with monespace.open(
        f"sqlite:///{work}/tick.db",
        clock=ManualClock(NOW),
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    ) as space:
        for n in range(count):
            patient = space.accounts.register_patient(OPERATOR, _identity(n))
            space.accounts.create_space(OPERATOR, patient.id)
        started = time.perf_counter()
        sent = space.agenda.tick(NOW)["reminders_sent"]
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = space.agenda.tick(NOW)["reminders_sent"]
        second = time.perf_counter() - started
    assert again == 0, "a second tick must queue nothing"
    timings = {"people": count, "sent": sent, "first_s": first, "second_s": second}
    figure = Figure(
        "tick (first, queues)",
        "people/s",
        Rates([count / first]),
        Rates([count / second]),
        "the second tick at the same moment (finds nothing new)",
        note=f"{sent} reminders queued for {count} people in {first:.2f} s",
    )
    return figure, timings


def bench_export(work: Path, seconds: float, repeat: int) -> Figure:
    space = monespace.open(
        f"sqlite:///{work}/export.db",
        clock=ManualClock(NOW),
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    )
    with space:
        patient = space.accounts.register_patient(OPERATOR, _identity(1))
        space.accounts.create_space(OPERATOR, patient.id)
        me = Actor.patient(patient.id)
        for n in range(1000):
            start = NOW + dt.timedelta(hours=7 * n)
            space.agenda.add(
                me,
                patient.id,
                kind=EventKind.APPOINTMENT,
                starts_at=start,
                ends_at=start + dt.timedelta(minutes=30),
                title=f"Consultation {n}",
                notes="apporter les résultats",
            )
        events = space.agenda.events(me, patient.id)

        def ours(n: int) -> None:
            for _ in range(n):
                space.agenda.export_ics(me, patient.id)

        def raw(n: int) -> None:
            for _ in range(n):
                lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//raw//FR"]
                for event in events:
                    lines += [
                        "BEGIN:VEVENT",
                        f"UID:{event.uid}",
                        f"DTSTART:{event.starts_at:%Y%m%dT%H%M%SZ}",
                        f"DTEND:{event.ends_at:%Y%m%dT%H%M%SZ}",
                        "SUMMARY:Rendez-vous",
                        "END:VEVENT",
                    ]
                lines.append("END:VCALENDAR")
                "\r\n".join(lines).encode()

        value, baseline = compare(
            ours, raw, seconds=seconds, repeat=repeat, per_unit=1000, baseline_per_unit=1000
        )
    return Figure(
        ".ics export (1,000 events)",
        "events/s",
        value,
        baseline,
        "f-strings over the already decrypted events",
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.quick:
        seconds, repeat, crowd, ticked = 0.2, 3, 2000, 100
    else:
        seconds, repeat, crowd, ticked = 1.0, 5, 20000, 1000
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent, packages=("monespace", "icalendar", "recurring-ical-events")
    )
    report = Report(
        script="benchmarks/bench_agenda.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "people_evaluated": crowd,
            "people_ticked": ticked,
        },
    )
    print(f"monespace agenda benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        evaluation = bench_evaluation(crowd, seconds, repeat)
        tick, timings = bench_tick(work, ticked)
        export = bench_export(work, seconds, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.figures = [evaluation, tick, export]
    report.extra["tick"] = timings
    show(report.figures, title="monespace against raw baselines", markdown=args.markdown)
    print(f"\nmeasured in {time.perf_counter() - started:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()

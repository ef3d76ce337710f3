"""Model-based test of the référencement (docs/domain-rules.md §7.2, issue 14).

A hypothesis ``RuleBasedStateMachine`` drives random sequences of applications (some with a
mandatory criterion lacking evidence), steps taken by every kind of actor (the vendors, a
reviewer, the commission, the minister's office, the operator, a patient), findings (all met,
or one failed), the passing of time and ticks. Every outcome is compared with :class:`Model`,
written from R1111-38 and R1111-39 without calling the library's rules: who may take each
step, from which state, on which conditions. Invariants: no service is referenced (or
suspended) without a favourable opinion and a convention; the public catalogue lists exactly
the referenced services whose convention has not ended.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from monespace import Actor, ActorKind, ManualClock
from monespace.catalogue import Dossier, load_referentiel
from monespace.errors import AccessDeniedError, ReferencementError

from .helpers import open_space

#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DURATION = timedelta(days=3 * 365)  # Settings.catalogue.convention_duration's default
WINDOW = timedelta(days=180)  # Settings.catalogue.renewal_window's default
CRITERIA = load_referentiel().criteria
MANDATORY = [c.id for c in CRITERIA if c.level == "obligatoire"]

#: How many times each state was reached, printed at the end (``pytest -s``).
REACHED: dict[str, int] = {}

VENDORS = ("vendor-a", "vendor-b")
ACTORS = {
    "vendor-a": Actor.vendor("vendor-a"),
    "vendor-b": Actor.vendor("vendor-b"),
    "reviewer": Actor.authority("instructeur", "reviewer"),
    "commission": Actor.authority("commission", "commission"),
    "minister": Actor.authority("cabinet", "minister"),
    "operator": Actor.system("test"),
    "patient": Actor.patient("p1"),
    "fake-minister": Actor.vendor("minister"),
}

#: Who takes each step (R1111-38, R1111-39); withdrawal also by the vendor who applied.
ROLE = {
    "start_review": "reviewer",
    "assess_met": "reviewer",
    "assess_failed": "reviewer",
    "favourable": "commission",
    "unfavourable": "commission",
    "reference": "minister",
    "suspend": "minister",
    "reinstate": "minister",
    "renew": "minister",
    "withdraw": "minister",
}


@dataclass
class MApplication:
    id: str
    client_id: str
    vendor: str
    evidence_complete: bool
    status: str = "applied"
    findings_met: bool = False
    favourable_seen: bool = False
    until: datetime | None = None


class Model:
    """The référencement as the sources state it; shares no code with monespace."""

    def __init__(self) -> None:
        self.now = START
        self.applications: dict[str, MApplication] = {}

    def allowed(self, who: str, step: str, application: MApplication) -> bool:
        if step == "withdraw" and who == application.vendor:
            return True
        return ROLE[step] == who

    def outcome(self, step: str, a: MApplication) -> str | None:
        """The state after *step*, or ``None`` when the step is refused."""
        alive = a.until is not None and self.now < a.until
        if step == "start_review":
            return "under_review" if a.status == "applied" else None
        if step in ("assess_met", "assess_failed"):
            return a.status if a.status == "under_review" else None
        if step == "favourable":
            ok = a.status == "under_review" and a.evidence_complete and a.findings_met
            return "favourable" if ok else None
        if step == "unfavourable":
            return "unfavourable" if a.status == "under_review" else None
        if step == "reference":
            return "referenced" if a.status == "favourable" else None
        if step == "suspend":
            return "suspended" if a.status == "referenced" else None
        if step == "reinstate":
            return "referenced" if a.status == "suspended" and alive else None
        if step == "withdraw":
            return "withdrawn" if a.status in ("referenced", "suspended") else None
        if step == "renew":
            assert a.until is not None or a.status not in ("referenced", "suspended")
            ok = (
                a.status in ("referenced", "suspended")
                and a.until is not None
                and alive
                and a.until - self.now <= WINDOW
            )
            return a.status if ok else None
        raise AssertionError(step)


class WorkflowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.space = open_space("memory://", self.clock)
        self.model = Model()

    def teardown(self) -> None:
        try:
            assert self.space.audit.verify().ok
        finally:
            self.space.close()

    @precondition(lambda self: len(self.model.applications) < 4)
    @rule(vendor=st.sampled_from(VENDORS), complete=st.booleans())
    def apply(self, vendor: str, complete: bool) -> None:
        n = len(self.model.applications) + 1
        evidence = {c.id: "pièce" for c in CRITERIA}
        if not complete:
            del evidence[MANDATORY[n % len(MANDATORY)]]
        dossier = Dossier(
            publisher="Éditeur",
            service=f"Service {n}",
            category="Suivi",
            purposes={"prevention"},
            exchange_tier="documents",
            scopes={"documents.read"},
            retention="1 an",
            consent_text="J'autorise le service.",
            dpia_reference="AIPD",
            redirect_uris=("https://service.example/cb",),
            evidence=evidence,
        )
        application = self.space.catalogue.apply(ACTORS[vendor], dossier)
        assert application.status == "applied"
        self.model.applications[application.id] = MApplication(
            application.id, application.client_id, vendor, complete
        )

    @rule(who=st.sampled_from(sorted(ACTORS)))
    def only_vendors_apply(self, who: str) -> None:
        if ACTORS[who].kind is ActorKind.VENDOR:
            return  # vendors apply: the rule above
        dossier = Dossier(
            publisher="X", service="X", category="X", purposes={"care"}, exchange_tier="none"
        )
        with pytest.raises(AccessDeniedError):
            self.space.catalogue.apply(ACTORS[who], dossier)

    def applications(self) -> list[MApplication]:
        """In the order they were made (their ids are random: sorting by id would make
        the draws depend on something else than the steps)."""
        return list(self.model.applications.values())

    @precondition(lambda self: bool(self.model.applications))
    @rule(data=st.data(), step=st.sampled_from(sorted(ROLE)))
    def take_step(self, data, step: str) -> None:
        """A step, by its role most of the time, by anyone else otherwise."""
        applications = list(
            self.model.applications.values()
        )  # in order of creation: ids are random
        application = data.draw(st.sampled_from(applications))
        who = data.draw(st.sampled_from([ROLE[step]] * len(ACTORS) + sorted(ACTORS)))
        self._take(application, who, step)

    @precondition(lambda self: bool(self.model.applications))
    @rule(data=st.data())
    def advance(self, data) -> None:
        """The next step of the usual path, by its role (to reach the later states often)."""
        applications = list(
            self.model.applications.values()
        )  # in order of creation: ids are random
        application = data.draw(st.sampled_from(applications))
        step = {
            "applied": "start_review",
            "under_review": "favourable" if application.findings_met else "assess_met",
            "favourable": "reference",
            "referenced": "suspend",
            "suspended": "reinstate",
        }.get(application.status, "renew")
        self._take(application, ROLE[step], step)

    def _take(self, application: MApplication, who: str, step: str) -> None:
        catalogue = self.space.catalogue
        actor = ACTORS[who]
        call = {
            "start_review": lambda: catalogue.start_review(actor, application.id),
            "assess_met": lambda: catalogue.assess(
                actor, application.id, dict.fromkeys(MANDATORY, "met")
            ),
            "assess_failed": lambda: catalogue.assess(actor, application.id, {"SEC-01": "failed"}),
            "favourable": lambda: catalogue.opinion(actor, application.id, favourable=True),
            "unfavourable": lambda: catalogue.opinion(actor, application.id, favourable=False),
            "reference": lambda: catalogue.reference(actor, application.id),
            "suspend": lambda: catalogue.suspend(actor, application.id),
            "reinstate": lambda: catalogue.reinstate(actor, application.id),
            "renew": lambda: catalogue.renew(actor, application.id),
            "withdraw": lambda: catalogue.withdraw(actor, application.id),
        }[step]
        if not self.model.allowed(who, step, application):
            with pytest.raises(AccessDeniedError):
                call()
            return
        target = self.model.outcome(step, application)
        if target is None:
            with pytest.raises(ReferencementError):
                call()
            return
        result = call()
        assert result.status == target
        REACHED[target] = REACHED.get(target, 0) + 1
        application.status = target
        if step in ("assess_met", "assess_failed"):
            application.findings_met = step == "assess_met"
        if step == "favourable":
            application.favourable_seen = True
        if step in ("reference", "renew"):
            application.until = self.model.now + DURATION
            assert result.convention is not None
            assert result.convention.until == application.until

    @rule(days=st.sampled_from([1, 30, 200, 400, 900]))
    def time_passes_and_tick(self, days: int) -> None:
        self.model.now += timedelta(days=days)
        self.clock.set(self.model.now)
        expired = 0
        for application in self.model.applications.values():
            if (
                application.status in ("referenced", "suspended")
                and application.until is not None
                and self.model.now >= application.until
            ):
                application.status = "expired"
                expired += 1
                REACHED["expired"] = REACHED.get("expired", 0) + 1
        assert self.space.tick().get("apps_expired", 0) == expired

    @invariant()
    def states_agree_and_nothing_is_referenced_without_opinion_and_convention(self) -> None:
        for application in self.space.catalogue.applications():
            expected = self.model.applications[application.id]
            assert application.status == expected.status
            if application.status in ("referenced", "suspended", "expired", "withdrawn"):
                assert expected.favourable_seen
                assert application.convention is not None
                assert application.convention.until == expected.until

    @invariant()
    def the_public_catalogue_lists_what_may_act(self) -> None:
        listed = {app.client_id for app in self.space.catalogue.search()}
        expected = {
            a.client_id
            for a in self.model.applications.values()
            if a.status == "referenced" and a.until is not None and self.model.now < a.until
        }
        assert listed == expected


TestWorkflow = WorkflowMachine.TestCase
TestWorkflow.settings = settings.get_profile("stateful")


@pytest.fixture(scope="module", autouse=True)
def _report_states():
    yield
    print(f"\nréférencement model, states reached: {REACHED}", file=sys.stderr)

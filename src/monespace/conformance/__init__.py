"""The conformance kit for app vendors: run your app against a sandbox, get a report.

``monespace conformance run -- COMMAND…`` (or :func:`run`) starts a sandbox demo server on
loopback (synthetic patients, a referenced test app, a patient who consents automatically),
runs the vendor's command with the sandbox's parameters in its environment
(:data:`ENVIRONMENT`), injects faults while it runs (a 429 and a 503 with ``Retry-After``,
an access token expired early, listing pages shorter than asked, the consent revoked),
records what the app did, and judges it against :data:`CRITERIA`. The app can be written
in any language: the kit only runs a command and watches its HTTP requests.

.. versionadded:: 0.2
"""

from ._criteria import CRITERIA, Criterion, Evidence, Status, Verdict, judge
from ._recorder import SANDBOX_AUTHORIZE_PATH, Exchange, Fault, Recorder, Scenario
from ._report import Report, dumps, report_html, report_json
from ._sandbox import CLIENT_ID, DEFAULT_SCOPES, ENVIRONMENT, REDIRECT_URI, build_space, run

__all__ = [
    "CLIENT_ID",
    "CRITERIA",
    "DEFAULT_SCOPES",
    "ENVIRONMENT",
    "REDIRECT_URI",
    "SANDBOX_AUTHORIZE_PATH",
    "Criterion",
    "Evidence",
    "Exchange",
    "Fault",
    "Recorder",
    "Report",
    "Scenario",
    "Status",
    "Verdict",
    "build_space",
    "dumps",
    "judge",
    "report_html",
    "report_json",
    "run",
]

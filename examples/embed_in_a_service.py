"""Embed monespace in a service of your own: a small Starlette app, separate from the demo
server, where people record their weight and read their series back, and the operator
publishes a pseudonymised, k-anonymous summary for an approved study.

Run it (needs the ``server`` and ``dataframes`` extras)::

    python examples/embed_in_a_service.py            # http://127.0.0.1:8001
    curl -X POST localhost:8001/people -d '{"seed": 3}'
    curl -X POST localhost:8001/people/<id>/weights -H 'X-Patient: <id>' -d '{"kg": 72.5}'
    curl localhost:8001/people/<id>/weights -H 'X-Patient: <id>'
    curl localhost:8001/study/weights

The ``X-Patient`` header stands for your own authentication: map your users to monespace
actors there, and let monespace's policy decide what each may do (a refused request is
traced in the audit trail and answered 403 here).
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import monespace
from monespace import Actor
from monespace.errors import AccessDeniedError, MonespaceError
from monespace.research import Study, aggregate, to_pandas
from monespace.synth import synthetic_identities

OPERATOR = Actor.system("embedding-service")
STUDY = Study("weights-demo", "Poids déclarés, démonstration", "demo-approval", k=3)


def _actor(request: Request) -> Actor:
    """Who is calling: here a header, in your service your own login."""
    return Actor.patient(request.headers.get("X-Patient", "anonymous"))


async def add_people(request: Request) -> JSONResponse:
    """Register synthetic people and open their spaces (a demo stand-in for enrolment)."""
    space: monespace.Space = request.app.state.space
    body = json.loads(await request.body() or b"{}")
    identities = synthetic_identities(int(body.get("count", 5)), seed=int(body.get("seed", 0)))
    ids = []
    with space.transaction():
        for patient in space.accounts.register_patients(OPERATOR, identities):
            space.accounts.create_space(OPERATOR, patient.id)
            ids.append(patient.id)
    return JSONResponse({"ids": ids}, status_code=201)


async def add_weight(request: Request) -> JSONResponse:
    """Record a weight in the caller's space."""
    space: monespace.Space = request.app.state.space
    kg = float(json.loads(await request.body())["kg"])
    measure = space.measures.add(_actor(request), request.path_params["id"], "weight", kg)
    return JSONResponse({"id": measure.id, "kg": measure.value}, status_code=201)


async def weights(request: Request) -> JSONResponse:
    """The caller's weight series."""
    space: monespace.Space = request.app.state.space
    series = space.measures.series(_actor(request), request.path_params["id"], "weight")
    return JSONResponse([{"at": m.measured_at.isoformat(), "kg": m.value} for m in series])


async def study_weights(request: Request) -> JSONResponse:
    """People with a recorded weight by age band: an aggregate with small cells suppressed."""
    space: monespace.Space = request.app.state.space
    extract = space.research.extract(OPERATOR, STUDY)
    frames = to_pandas(extract)
    rows = frames["measures"].merge(frames["people"], on="pseudonym").to_dict("records")
    table = aggregate(rows, ["age_band"], k=STUDY.k, name="weights")
    return JSONResponse({"k": STUDY.k, "cells": list(table.rows)})


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "not allowed"}, status_code=403)


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    # The message of a monespace error never carries health data.
    return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(space: monespace.Space) -> Starlette:
    """The service, on a space its owner opened (and closes when the service stops)."""
    app = Starlette(
        routes=[
            Route("/people", add_people, methods=["POST"]),
            Route("/people/{id}/weights", add_weight, methods=["POST"]),
            Route("/people/{id}/weights", weights, methods=["GET"]),
            Route("/study/weights", study_weights, methods=["GET"]),
        ],
        exception_handlers={AccessDeniedError: _refused, MonespaceError: _failed},
    )
    app.state.space = space
    return app


if __name__ == "__main__":
    import uvicorn

    # memory:// keeps nothing once stopped; use sqlite:///service.db to keep the data.
    with monespace.open("memory://") as opened:
        uvicorn.run(create_app(opened), host="127.0.0.1", port=8001)

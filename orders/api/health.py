"""Liveness (the process answers) and readiness (the database answers and is migrated)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from orders.api import problems
from orders.api.problems import ProblemError
from orders.api.request_spans import UNTRACED
from orders.api.services import Services
from orders.eventstore import StoreUnavailable
from orders.eventstore.migrate import schema_is_current


class HealthStatus(msgspec.Struct, frozen=True):
    status: str


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012 (Litestar reads these class attributes)
    opt = {UNTRACED: True}  # noqa: RUF012

    @get("/health/live", summary="The process is up (does not touch the database)")
    async def live(self) -> HealthStatus:
        return HealthStatus("ok")

    @get(
        ["/health/ready", "/api/v1/orders/health"],
        summary="The database answers and has every migration",
        responses={503: problems.problem_spec("The database is unreachable or not migrated")},
    )
    async def ready(self, services: NamedDependency[Services]) -> HealthStatus:
        try:
            current = await schema_is_current(services.read_model.pool)
        except StoreUnavailable:
            current = False
        if not current:
            raise ProblemError(
                problems.SERVICE_UNAVAILABLE,
                "the database is unreachable or not migrated",
                retry_after=1,
            )
        return HealthStatus("ready")

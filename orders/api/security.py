"""What the OpenAPI document says about authentication, for the mode the service runs in."""

from __future__ import annotations

from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from orders.settings import Settings


def security_schemes(settings: Settings) -> tuple[Components, list[SecurityRequirement]]:
    """The document's security schemes, and the requirement every order operation carries
    (none with `ORDERS_AUTH=none`)."""
    if settings.auth == "jwt":
        scheme = SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description=f"A JWT from {settings.jwt_issuer} for the audience "
            f"{settings.jwt_audience}; the caller is its `sub`. Callers with the role "
            f"`{settings.admin_role}` (in `scope`, `scp` or `roles`) read every order and may "
            f"do everything to it; with `{settings.fulfilment_role}`, read every order and "
            f"pay, ship, deliver or cancel it; with `{settings.events_role}`, read the event "
            "feed.",
        )
    elif settings.auth == "gateway":
        scheme = SecurityScheme(
            type="apiKey",
            name=settings.auth_header,
            security_scheme_in="header",
            description="Set by the authenticating gateway in front of the service, never by "
            f"a client: the caller's id. `{settings.auth_roles_header}` carries its roles; "
            f"`{settings.admin_role}` reads every order and may do everything to it; "
            f"`{settings.fulfilment_role}` reads every order and may pay, ship, deliver or "
            f"cancel it; `{settings.events_role}` reads the event feed.",
        )
    else:
        return Components(), []
    name = f"{settings.auth}Caller"
    return Components(security_schemes={name: scheme}), [{name: []}]

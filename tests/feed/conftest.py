"""The service in-process over the module's own database (`client`, from tests/api)."""

from tests.api.conftest import client

__all__ = ["client"]

"""The HTTP API (Litestar): routes, problem details, observability, the app factory."""

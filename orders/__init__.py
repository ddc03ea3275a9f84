"""orders: an event-sourced, idempotent order service."""

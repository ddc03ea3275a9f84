"""What the tracing tests share about finished spans."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan


def is_within(child: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether `child` starts before it ends, both inside `parent`'s interval."""
    assert child.start_time is not None and child.end_time is not None
    assert parent.start_time is not None and parent.end_time is not None
    return parent.start_time <= child.start_time < child.end_time <= parent.end_time

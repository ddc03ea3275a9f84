"""Pure order decisions: commands in, events out, no I/O (enforced by tests/unit/test_layers.py)."""

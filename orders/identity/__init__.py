"""Who is calling: bearer tokens verified against the issuer's keys (no HTTP framework here)."""

"""The HTTP API (SPEC §6): JSON in, JSON out, errors included."""

"""Fakes of external services that speak the real protocol over loopback (used by integration tests)."""

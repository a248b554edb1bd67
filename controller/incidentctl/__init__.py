"""incidentctl: open incidents, triage, run severity procedures and keep the incident record."""

__version__ = "0.1.0"

"""HTTP for every service: the FastAPI factory with health and metrics, tokens, roles and the audit trail, request
limits. Imported by the services' app.py."""

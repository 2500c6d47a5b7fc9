"""The service's HTTP routes, one module per concern; cds_hooks.app mounts them.

- discovery: `GET /cds-services`
- hooks: `POST /cds-services/{id}` (the hook pipeline, cds_hooks/hook_pipeline.py)
- feedback: `POST /cds-services/{id}/feedback`
- sheets: `GET /patient-sheets/{sheet}`
Health and metrics routers live with their checks (cds_hooks/health.py, cds_hooks/metrics.py).
"""

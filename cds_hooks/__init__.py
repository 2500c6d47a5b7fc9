"""spinecds CDS Hooks 2.0 service: discovery, hook endpoints, feedback (FastAPI app `cds_hooks.app:app`).

The service resolves prefetch (or fetches from the client's FHIR server), hands raw FHIR JSON to
`engine.api.evaluate` and returns spec-shaped cards. It keeps no per-patient state between requests;
only feedback and an audit line per evaluation are stored.
"""

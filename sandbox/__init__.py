"""FHIR sandbox kit: synthetic patients as transaction Bundles, a loader and a CDS Hooks test client.

Standard library + requests + pyyaml only (no FastAPI, no engine imports), so integrators can run it
as a client anywhere.
"""

"""spinecds engine: FHIR resources -> clinical facts -> rule files (durable-rules) -> CDS cards.

The engine is usable without HTTP: `engine.api` is the one entry point the service calls.
"""

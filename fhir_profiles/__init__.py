"""FHIR terminology artefacts (CodeSystems, ValueSets) and their loader."""

"""FHIR artefacts (CodeSystems, ValueSets, StructureDefinitions), their loaders, profile checks and export."""

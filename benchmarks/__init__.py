"""The labelled QA benchmark: generation against a local LLM, labelling, and its data."""

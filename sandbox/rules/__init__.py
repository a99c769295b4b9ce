"""The sandbox LLM's deterministic rules: read the prompt, find commitments and deal facts."""

"""LLM extraction: transcript in, grounded Insights out."""

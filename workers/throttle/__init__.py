"""Per-provider throttling shared by every worker process.

`buckets` holds the contract (Ask, Decision, the Throttle protocol) and its Redis and
memory backends; `limits` says which bucket an op or an LLM call draws from; `feedback`
turns 429s and providers' limit headers into cooldowns; `middleware` asks before a push and
reports after it; `llm` admits a meeting's extraction against the model's budget.
"""

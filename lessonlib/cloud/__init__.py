"""The cloud tutorials: OpenAI and Azure OpenAI fine-tuning jobs, and AutoTrain configurations.

Nothing here creates a client or reads a key at import time; see :mod:`lessonlib.cloud.jobs` for
the safety rules (dry run without a key, cost shown first, budget guard, keys never shown).
"""

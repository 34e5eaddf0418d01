"""Error tracking: fingerprints, error groups, occurrences and their deployment context.

The lower layer: it knows nothing of jobs or the DLQ, only job names.
"""

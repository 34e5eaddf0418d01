"""Exponential backoff: the delay before retry n is min(initial × multiplier^(n-1), maximum)."""

import math


def retry_delay(retry_number, *, initial, multiplier, maximum):
    """Seconds before retry n (1, 2, …): min(initial × multiplier^(n-1), maximum)."""
    if retry_number < 1:
        raise ValueError("retry numbers start at 1")
    exponent = retry_number - 1
    if initial <= 0:
        return 0.0
    if initial >= maximum:
        return maximum
    if multiplier <= 1:
        return initial * multiplier**exponent
    # The cap is reached once multiplier^exponent ≥ maximum / initial; answering
    # it from the logarithm keeps a late retry's power from overflowing a float.
    if exponent >= math.log(maximum / initial, multiplier):
        return maximum
    return initial * multiplier**exponent


def job_retry_delay(job, retry_number):
    return retry_delay(
        retry_number,
        initial=job.retry_initial_delay,
        multiplier=job.retry_multiplier,
        maximum=job.retry_max_delay,
    )

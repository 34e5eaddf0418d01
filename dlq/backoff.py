"""Exponential backoff: the delay before retry n, as SPEC §4 gives it."""


def retry_delay(retry_number, *, initial, multiplier, maximum):
    """Seconds before retry n (1, 2, …): min(initial × multiplier^(n-1), maximum)."""
    if retry_number < 1:
        raise ValueError("retry numbers start at 1")
    # Capping the exponent keeps a huge retry number from overflowing a float.
    exponent = min(retry_number - 1, 1024)
    try:
        delay = initial * multiplier**exponent
    except OverflowError:
        delay = maximum
    return min(delay, maximum)


def job_retry_delay(job, retry_number):
    return retry_delay(
        retry_number,
        initial=job.retry_initial_delay,
        multiplier=job.retry_multiplier,
        maximum=job.retry_max_delay,
    )

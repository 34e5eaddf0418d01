"""Running a management command as an operator does, for the tests of the commands."""

from io import StringIO

from django.core.management import call_command


def run(*args, stdin=None):
    """Run a command; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    kwargs = {"stdin": stdin} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()

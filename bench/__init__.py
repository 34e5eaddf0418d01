"""`make bench`: Velo measured at scale against references measured in the same run (issue 5)."""

"""One module per figure of the benchmark table; each returns report rows."""

"""The demo: its processors (`demo.trades`, `demo.flaky`, `demo.slow`), its jobs and the feed
that `make run` and `velo_demo` send them. Built on dlq the way a user's own pipelines are."""

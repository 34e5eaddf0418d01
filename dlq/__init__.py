"""Jobs, batches, the processing engine and its failure strategies, and the DLQ."""

"""Building blocks both apps use and neither owns: bulk writes, online index changes, the
admin kit. No models and no domain: `common` imports neither `dlq` nor `errors`."""

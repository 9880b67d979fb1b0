"""The published mart: its contract (contract.py), how a run publishes it (publish.py), how it is read
(read.py), and how a Spark build reaches Postgres (spark.py)."""

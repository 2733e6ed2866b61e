"""Executor processes: ``python -m asyncspark.executor --driver HOST:PORT ...``."""

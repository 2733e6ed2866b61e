"""Executor processes: ``python -m asyncspark.executor``, told where its driver is through
its environment (``__main__.py``)."""

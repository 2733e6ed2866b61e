"""Concrete RDD kinds. The public type is ``asyncspark.RDD``; these are internals."""

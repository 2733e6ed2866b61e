"""Storage: cached RDD partitions on executors (``block_manager``: memory, disk and
host-level shared-memory stores) and the driver's view of where blocks are (``master``).
"""

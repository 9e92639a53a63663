"""One run on several worker processes, on this machine (``--workers N``) or on a Dask cluster (``--cluster``).

The plan is dealt by ``stressor.shares``: worker i of n starts every n-th batch and takes 1/n of each limit.
Every worker runs the same function (``worker.run_worker``), which streams a ``Snapshot`` each interval: the
runs that ended in it and cumulative counters and HDR histograms. The coordinator folds them into one
``Tally`` (``tally.py``, pure), which merges losslessly: the result of n workers is the result one process
would have written for the same runs. A worker that dies is reported; what it streamed and what the others
gathered is kept.
"""

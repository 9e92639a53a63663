"""One run on several worker processes, on this machine (``--workers N``) or on a Dask cluster (``--cluster``).

Worker i of n starts every n-th batch with 1/n of each limit (``stressor.shares``) and streams a ``Snapshot``
each interval; the coordinator folds them into one ``Tally``, losslessly: n workers write the results one
process would have written for the same runs. A worker that dies is reported; what was gathered is kept.
"""

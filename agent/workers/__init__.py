"""Pre-fork worker groups: one multiprocess directory per group, so one ``/metrics`` sums them all.

Under gunicorn, uWSGI, ``uvicorn --workers`` or ``hypercorn -w``, every worker runs ``configure()``
and counts its own requests, while only one of them can bind the ``/metrics`` port.
prometheus-client's multiprocess mode makes the figures of every worker readable by the one that
serves: each process writes its values into its own mmap files in one directory, and a scrape sums
them. ``group.join()`` sets that up before the metrics are built, when it detects such a server
(or when ``OTEL_DOWNSTREAM_MULTIPROCESS=true``), in a directory every worker finds without being
told. A ``PROMETHEUS_MULTIPROC_DIR`` set by the user is used as it is and never wiped nor removed.

One job per module: ``detect`` (which server, which process is its master), ``directory`` (where
the group's directory is, making and checking it, its lock), ``group`` (membership, who serves
``/metrics``), ``fold`` (folding dead workers' files, the files a scrape reads), ``watcher``
(the process that removes the directory once the whole group is gone) and ``forks`` (telling a
``/metrics`` server that its process was forked). Every operation on the
directory runs under a lock of its ``.lock`` file, taken anew each time.
"""

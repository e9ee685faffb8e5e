"""The shell: the ``auditcorr`` command line and the local query engine (Trino SQL translated to
DuckDB).  Not in the Lambda layer: the handlers compose the core with ``auditcorr_aws`` instead.
It composes the core (``auditcorr``) with the local lake, the AWS adapters (``--lake s3://``,
``--athena``, ``poll``) and the simulation (``demo``, ``poll --fake-world``), each imported lazily."""

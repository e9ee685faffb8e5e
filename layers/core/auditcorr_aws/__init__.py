"""AWS adapters: the only place (with ``functions/``) that imports boto3, awswrangler or Powertools.

- :mod:`.envelopes` decodes the notifications that announce a new S3 object (pure);
- :mod:`.settings` turns the Lambda environment (set once in ``template.yaml`` Globals) into a
  :class:`~auditcorr.config.Config` and the deployment's names;
- :mod:`.s3` builds the clients lazily, fetches objects and opens the lake on S3 (pyarrow);
- :mod:`.ingest` feeds announced objects to the core :class:`~auditcorr.pipeline.Pipeline`;
- :mod:`.alerts` publishes changed alert rows to SNS (exactly once, Powertools idempotency on
  DynamoDB) and Security Hub (ASFF findings, id = alert id);
- :mod:`.athena` runs analyst SQL on Athena through awswrangler (``auditcorr query --athena``).

Nothing here creates a client at import time: every client is made on first use, after the
environment (region, endpoint, credentials -- or moto in tests) is in place.
"""

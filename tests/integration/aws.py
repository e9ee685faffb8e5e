"""A moto server on 127.0.0.1 standing in for AWS (S3, SQS, SNS, EventBridge, Glue, Security Hub,
DynamoDB, STS, Athena), the deployment's resources created in it, and the handlers loaded exactly as
``template.yaml`` names them (file path + attribute, imported with importlib)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow.fs as pafs
import requests

from auditcorr.lake import Lake

from . import template as tplmod

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
LAKE_BUCKET = "example-auditcorr-lake"
LAKE_PREFIX = "lake"
CLOUDTRAIL_BUCKET = "example-org-cloudtrail"
APPSTREAM_BUCKET = "appstream-logs-us-east-1-111122223333-abcdefgh"
#: a second account's report bucket (an organisation: its events forwarded, its policy granting the read)
APPSTREAM_BUCKET_2 = "appstream-logs-us-east-1-444455556666-ijklmnop"
IDEMPOTENCY_TABLE = "auditcorr-idempotency"
TOPIC_NAME = "auditcorr-alerts"
FLEET_ROLE = "arn:aws:iam::111122223333:role/AppStreamFleetRole"
#: Amazon Security Lake (the OCSF export): this region's bucket and the custom sources' provider roles
SECURITY_LAKE_BUCKET = "aws-security-data-lake-us-east-1-exampleexampleexample1"
SECURITY_LAKE_EXTERNAL_ID = "auditcorr-test-external-id"
PROVIDER_ROLES = {source: f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSecurityLake-Provider-{source}-{REGION}"
                  for source in ("auditcorr-datastore", "auditcorr-auth", "auditcorr-finding")}

#: template parameters of the test deployment
PARAMS: dict[str, Any] = {
    "CloudTrailBucketName": CLOUDTRAIL_BUCKET,
    "AppStreamLogsBucketNames": f"{APPSTREAM_BUCKET},{APPSTREAM_BUCKET_2}",
    "AttributedRoleArns": FLEET_ROLE,
    "FleetCidrs": "10.40.0.0/16",
    "LakePrefix": LAKE_PREFIX,
    "EnableSecurityHub": "true",
    "SecurityLakeBucketName": SECURITY_LAKE_BUCKET,
    "SecurityLakeDatastoreRoleArn": PROVIDER_ROLES["auditcorr-datastore"],
    "SecurityLakeAuthRoleArn": PROVIDER_ROLES["auditcorr-auth"],
    "SecurityLakeFindingRoleArn": PROVIDER_ROLES["auditcorr-finding"],
    "SecurityLakeExternalId": SECURITY_LAKE_EXTERNAL_ID,
}

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

#: variables that would point a client somewhere else than the moto server
_CLEAR = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
          "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT")


# -- the moto server, recording every request it answers ------------------------------------------
@dataclass(frozen=True)
class Request:
    """One HTTP request the moto server answered (enough to say which IAM action it needed)."""

    method: str
    host: str
    path: str  # raw (percent-encoded), without the query
    query: str
    target: str  # X-Amz-Target (JSON protocols), or ""
    copy_source: str  # x-amz-copy-source (S3 CopyObject / UploadPartCopy), or ""
    auth: str  # the Authorization header (service and access key are in its credential scope)
    body: bytes  # kept only for small form/JSON/XML bodies (query protocols, DeleteObjects, JSON APIs)
    thread: str


class RequestLog:
    """Requests seen by the server, in order; thread-safe. ``mark()`` then ``since(mark)`` isolates
    what one handler invocation sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Request] = []

    def add(self, req: Request) -> None:
        with self._lock:
            self._items.append(req)

    def mark(self) -> int:
        with self._lock:
            return len(self._items)

    def since(self, mark: int) -> list[Request]:
        with self._lock:
            return list(self._items[mark:])


_SMALL_BODY_TYPES = ("application/x-www-form-urlencoded", "application/x-amz-json", "application/json",
                     "application/xml", "text/xml")


class _Recorder:
    """WSGI middleware in front of moto's application."""

    def __init__(self, app: Any, log: RequestLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = b""
        ctype = environ.get("CONTENT_TYPE", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length and length <= 1_000_000 and (ctype.startswith(_SMALL_BODY_TYPES) or "delete" in
                                               environ.get("QUERY_STRING", "")):
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        self.log.add(Request(
            method=environ["REQUEST_METHOD"], host=environ.get("HTTP_HOST", ""),
            path=environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""), target=environ.get("HTTP_X_AMZ_TARGET", ""),
            copy_source=environ.get("HTTP_X_AMZ_COPY_SOURCE", ""),
            auth=environ.get("HTTP_AUTHORIZATION", ""), body=body, thread=threading.current_thread().name))
        return self.app(environ, start_response)


class RecordingMotoServer:
    """moto's threaded server (127.0.0.1, a free port) with a :class:`RequestLog` in front."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.endpoint = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = _Recorder(DomainDispatcherApplication(create_backend_app), self.log)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)


def quiet_moto_logs() -> None:
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


def reset(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


@dataclass
class Deployment:
    """The stack's resources as created in moto, and the function environment from the template."""

    endpoint: str
    topic_arn: str
    sns_sink_url: str  # an SQS queue subscribed to the alerts topic: what "reached SNS"
    tpl: dict[str, Any]
    params: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    @property
    def resolver(self) -> tplmod.Resolver:
        return tplmod.Resolver(self.tpl, self.params, self.refs)

    def function_env(self, function: str) -> dict[str, str]:
        spec = tplmod.function_specs(self.tpl)[function]
        return {k: str(v) for k, v in self.resolver(spec["env"]).items()}

    # -- the lake ---------------------------------------------------------------------------------
    def filesystem(self) -> pafs.S3FileSystem:
        host = self.endpoint.split("://", 1)[1]
        return pafs.S3FileSystem(endpoint_override=host, scheme="http", region=REGION,
                                 access_key="testing", secret_key="testing")

    def lake(self) -> Lake:
        return Lake.open(f"s3://{LAKE_BUCKET}/{LAKE_PREFIX}", filesystem=self.filesystem())

    def lake_objects(self) -> dict[str, str]:
        """Every object of the lake bucket: key -> ETag (what a retry must leave unchanged)."""
        s3 = self.client("s3")
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["ETag"]
        return out

    # -- sinks ------------------------------------------------------------------------------------
    def sns_messages(self) -> list[dict[str, Any]]:
        """Everything the alerts topic delivered so far (drained from the subscribed queue)."""
        sqs = self.client("sqs")
        out = []
        while True:
            resp = sqs.receive_message(QueueUrl=self.sns_sink_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.sns_sink_url, ReceiptHandle=m["ReceiptHandle"])

    def findings(self) -> list[dict[str, Any]]:
        hub = self.client("securityhub")
        out: list[dict[str, Any]] = []
        token = None
        while True:
            resp = hub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
            out += resp["Findings"]
            token = resp.get("NextToken")
            if not token:
                return out


def deploy(endpoint: str, params: dict[str, Any] | None = None) -> Deployment:
    """Create the resources the functions use, named as the template would wire them."""
    params = PARAMS | (params or {})
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (LAKE_BUCKET, CLOUDTRAIL_BUCKET, APPSTREAM_BUCKET, APPSTREAM_BUCKET_2, SECURITY_LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": SECURITY_LAKE_EXTERNAL_ID}}}]})
    for arn in PROVIDER_ROLES.values():
        iam.create_role(RoleName=arn.rsplit("/", 1)[1], Path="/service-role/", AssumeRolePolicyDocument=trust)
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    sink = sqs.create_queue(QueueName="alerts-topic-subscriber")["QueueUrl"]
    sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sink_arn)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(TableName=IDEMPOTENCY_TABLE, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    boto3.client("securityhub", region_name=REGION).enable_security_hub()
    refs = {"LakeBucket": LAKE_BUCKET, "AlertsTopic": topic, "IdempotencyTable": IDEMPOTENCY_TABLE,
            "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
            "AWS::StackName": "auditcorr-test", "GlueDatabase": "auditcorr", "AthenaWorkGroup": "auditcorr"}
    return Deployment(endpoint, topic, sink, tplmod.load(), params, refs)


# -- handlers -------------------------------------------------------------------------------------
@dataclass
class FakeContext:
    function_name: str = "auditcorr-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:auditcorr-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/auditcorr/test"
    log_stream_name: str = "test"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_handler(function: str, tpl: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(module, handler)`` for a function of template.yaml: its CodeUri/Handler file imported by
    path under a fresh module name (so lazily built clients start from scratch)."""
    spec = tplmod.function_specs(tpl or tplmod.load())[function]
    fresh_powertools_logger()
    name = f"handler_{function}_{uuid.uuid4().hex[:8]}"
    mod_spec = importlib.util.spec_from_file_location(name, spec["file"])
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module, getattr(module, spec["attr"])


def fresh_powertools_logger() -> None:
    """A new container starts with an unconfigured logger: Powertools keeps its handler (bound to the
    stdout of the test that first made it) on the stdlib logger of the service name, so drop it."""
    from aws_lambda_powertools.logging.constants import LOGGER_ATTRIBUTE_PRECONFIGURED

    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    for name in (service, "auditcorr"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            lg.removeHandler(h)
        for attr in [a for a in vars(lg) if a == LOGGER_ATTRIBUTE_PRECONFIGURED or a.startswith("powertools")]:
            delattr(lg, attr)


def sqs_event(bodies: list[str | dict[str, Any]], queue: str = "queue") -> dict[str, Any]:
    """A Lambda SQS event with these message bodies."""
    import hashlib

    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append({
            "messageId": f"msg-{i}-{uuid.uuid4().hex[:8]}", "receiptHandle": f"rh-{i}", "body": text,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1772440560000",
                           "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1772440560000"},
            "messageAttributes": {}, "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
            "awsRegion": REGION})
    return {"Records": records}


def sqs_event_from_queue(queue_url: str) -> dict[str, Any]:
    """Drain a moto queue into a Lambda SQS event (what the event source mapping would deliver)."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[str] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return sqs_event(bodies)


def emf_metrics(output: str) -> dict[str, float]:
    """Sum of every EMF metric printed to stdout (Powertools Metrics)."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for m in directive["Metrics"]:
                value = doc[m["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[m["Name"]] = totals.get(m["Name"], 0) + sum(values)
    return totals


def read_parquet_object(key: str) -> Any:
    import pyarrow.parquet as pq

    body = boto3.client("s3", region_name=REGION).get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


def set_env(monkeypatch: Any, endpoint: str, extra: dict[str, str] | None = None) -> None:
    for var in _CLEAR:
        monkeypatch.delenv(var, raising=False)
    for k, v in (FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint, "POWERTOOLS_TRACE_DISABLED": "1"}
                 | (extra or {})).items():
        monkeypatch.setenv(k, v)


def repo_path(*parts: str) -> Path:
    return tplmod.ROOT.joinpath(*parts)

"""What IAM would say about the requests a handler really sent.

moto answers without checking permissions (its IAM enforcement ignores most resources and every
``s3:prefix`` condition), so the requests the moto server recorded are mapped here to the IAM action,
resource ARN and condition keys AWS would evaluate, and checked against the function's policy as
``template.yaml`` writes it (inline statements, plus the template's managed policies it references).
Only what this application calls is mapped; anything else is reported as unknown, never allowed.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.integration import aws
from tests.integration import template as tplmod

#: pyarrow's S3 client probes a bucket that cannot exist to learn which backend it talks to; the
#: answer (404 or 403) is only inspected, never an error, so IAM need not allow it
PROBE_BUCKETS = frozenset({"$extremelyunlikelytoexist$"})


@dataclass(frozen=True)
class Call:
    action: str  # e.g. s3:GetObject
    resource: str
    context: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    request: str = ""  # method and path, for messages

    def __str__(self) -> str:
        ctx = f" {self.context}" if self.context else ""
        return f"{self.action} on {self.resource}{ctx}  <- {self.request}"


def _service(req: aws.Request) -> str:
    m = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", req.auth)
    return m.group(1) if m else "?"


def _s3_calls(req: aws.Request) -> list[Call]:
    parts = req.path.split("?", 1)[0].lstrip("/").split("/", 1)
    bucket = unquote(parts[0])
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] != "" else None
    q = parse_qs(req.query, keep_blank_values=True)
    where = f"{req.method} /{bucket}/{key or ''}{'?' + req.query if req.query else ''}"
    barn = f"arn:aws:s3:::{bucket}"
    if bucket in PROBE_BUCKETS:
        return []
    if key is None:
        if req.method == "HEAD":
            return [Call("s3:ListBucket", barn, {}, where)]  # HeadBucket
        if req.method == "GET":
            for sub, action in (("versions", "s3:ListBucketVersions"), ("uploads", "s3:ListBucketMultipartUploads"),
                                ("location", "s3:GetBucketLocation"), ("versioning", "s3:GetBucketVersioning")):
                if sub in q:
                    return [Call(action, barn, {}, where)]
            ctx = {"s3:prefix": q["prefix"][0]} if "prefix" in q else {}
            return [Call("s3:ListBucket", barn, ctx, where)]
        if req.method == "POST" and "delete" in q:  # DeleteObjects: s3:DeleteObject per key
            root = ET.fromstring(req.body)
            keys = [el.text or "" for el in root.iter() if el.tag.endswith("Key")]
            return [Call("s3:DeleteObject", f"{barn}/{k}", {}, where) for k in keys]
        return [Call(f"s3:?{req.method}-bucket", barn, {}, where)]
    oarn = f"{barn}/{key}"
    if req.method in ("GET", "HEAD"):
        if "tagging" in q:
            return [Call("s3:GetObjectTagging", oarn, {}, where)]
        return [Call("s3:GetObjectVersion" if "versionId" in q else "s3:GetObject", oarn, {}, where)]
    if req.method == "PUT":
        if "tagging" in q:
            return [Call("s3:PutObjectTagging", oarn, {}, where)]
        calls = [Call("s3:PutObject", oarn, {}, where)]  # PutObject, UploadPart, CopyObject (destination)
        if req.copy_source:
            src = unquote(req.copy_source.lstrip("/")).split("?versionId=")
            calls.append(Call("s3:GetObjectVersion" if len(src) > 1 else "s3:GetObject",
                              f"arn:aws:s3:::{src[0]}", {}, where))
        return calls
    if req.method == "POST" and ("uploads" in q or "uploadId" in q):  # Create/CompleteMultipartUpload
        return [Call("s3:PutObject", oarn, {}, where)]
    if req.method == "DELETE":
        if "uploadId" in q:
            return [Call("s3:AbortMultipartUpload", oarn, {}, where)]
        return [Call("s3:DeleteObjectVersion" if "versionId" in q else "s3:DeleteObject", oarn, {}, where)]
    return [Call(f"s3:?{req.method}", oarn, {}, where)]


def calls_of(req: aws.Request) -> list[Call]:
    """The IAM actions one recorded request needs."""
    service = _service(req)
    where = f"{req.method} {req.path}"
    if service == "s3":
        return _s3_calls(req)
    if service == "sns":
        form = parse_qs(req.body.decode())
        action = form.get("Action", ["?"])[0]
        return [Call(f"sns:{action}", form.get("TopicArn", ["?"])[0], {}, where)]
    if service == "dynamodb":
        body = json.loads(req.body or b"{}")
        table = f"arn:aws:dynamodb:{aws.REGION}:{aws.ACCOUNT}:table/{body.get('TableName', '?')}"
        return [Call(f"dynamodb:{req.target.split('.')[-1]}", table, {}, where)]
    if service == "securityhub" and req.method == "POST" and req.path.startswith("/findings/import"):
        body = json.loads(req.body or b"{}")
        products = {f.get("ProductArn", "?") for f in body.get("Findings", [])} or {"?"}
        return [Call("securityhub:BatchImportFindings", p, {}, where) for p in sorted(products)]
    if service == "sts" and "GetCallerIdentity" in (req.body.decode(errors="replace") + req.target):
        return []  # never needs a permission
    if service == "sts":
        form = parse_qs(req.body.decode(errors="replace"))
        if form.get("Action") == ["AssumeRole"]:
            return [Call("sts:AssumeRole", form.get("RoleArn", ["?"])[0], {}, where)]
    return [Call(f"{service}:?", "?", {}, f"{where} {req.target}")]


# -- the policy side ------------------------------------------------------------------------------
def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    rx = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(rx, value, re.IGNORECASE if ignore_case else 0) is not None


_OPERATORS = {
    "StringLike": lambda want, got: any(_glob(w, got) for w in want),
    "StringEquals": lambda want, got: got in want,
    "ArnLike": lambda want, got: any(_glob(w, got) for w in want),
    "ArnEquals": lambda want, got: got in want,
}


def _conditions_hold(cond: dict[str, Any] | None, ctx: dict[str, str]) -> bool:
    for op, keys in (cond or {}).items():
        base, if_exists = (op[: -len("IfExists")], True) if op.endswith("IfExists") else (op, False)
        if base not in _OPERATORS:
            raise ValueError(f"condition operator {op} is not modelled")
        for key, want in keys.items():
            if key not in ctx:
                if not if_exists:
                    return False
                continue
            if not _OPERATORS[base]([str(w) for w in _as_list(want)], ctx[key]):
                return False
    return True


def function_statements(tpl: dict[str, Any], function: str, resolver: tplmod.Resolver) -> list[dict[str, Any]]:
    """The Allow statements of a function's ``Policies`` (inline ones and the template's managed
    policies it references), resolved for one deployment."""
    out: list[dict[str, Any]] = []
    for pol in tpl["Resources"][function]["Properties"].get("Policies", []):
        if isinstance(pol, dict) and set(pol) == {"Ref"}:
            doc = tpl["Resources"][pol["Ref"]]["Properties"]["PolicyDocument"]
        elif isinstance(pol, dict) and "Statement" in pol:
            doc = pol
        else:
            raise ValueError(f"{function}: policy {pol!r} is not modelled (SAM policy template or AWS managed)")
        out += [st for st in resolver(doc["Statement"]) if st.get("Effect") == "Allow"]
    return out


def allows(statements: list[dict[str, Any]], call: Call) -> bool:
    for st in statements:
        if "NotAction" in st or "NotResource" in st:
            raise ValueError("NotAction/NotResource are not modelled")
        if not any(_glob(a, call.action, ignore_case=True) for a in _as_list(st["Action"])):
            continue
        if not any(_glob(r, call.resource) for r in _as_list(st["Resource"])):
            continue
        if _conditions_hold(st.get("Condition"), call.context):
            return True
    return False


def resolver_for(deployment: aws.Deployment) -> tplmod.Resolver:
    attrs = {("LakeBucket", "Arn"): f"arn:aws:s3:::{aws.LAKE_BUCKET}",
             ("IdempotencyTable", "Arn"): f"arn:aws:dynamodb:{aws.REGION}:{aws.ACCOUNT}:table/{aws.IDEMPOTENCY_TABLE}"}
    return tplmod.Resolver(deployment.tpl, deployment.params, deployment.refs, attrs)


def denied(deployment: aws.Deployment, function: str, requests: list[aws.Request]) -> list[Call]:
    """Every call among ``requests`` that the function's template policy would not allow."""
    statements = function_statements(deployment.tpl, function, resolver_for(deployment))
    return [c for r in requests for c in calls_of(r) if not allows(statements, c)]

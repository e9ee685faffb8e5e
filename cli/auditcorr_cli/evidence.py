"""``auditcorr evidence``: gather an evidence bundle from the lake and the files it was read from, and
verify one offline (the format and the checks: ``auditcorr.evidence``).

Raw records come from the log files themselves: the lake keeps each row's ``source_object`` (the path
the file was ingested from), and the bundle reads the file again from there.  When it is gone (moved,
deleted, or on S3: fetch it first and ingest the local copy), the bundle says so for that file; the
checks that need it then answer "n/a", never "ok".  Digests come from the lake's own copy
(``_state/integrity/digests``), kept when they were ingested.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
import pyarrow.compute as pc

from auditcorr import __version__
from auditcorr import evidence as ev
from auditcorr.config import Config
from auditcorr.integrity import KeyRing
from auditcorr.integrity.keys import parse_digest_key, relative_key
from auditcorr.integrity.local import load_key_directory
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline

_MAX_SOURCE_BYTES = 256 << 20


def _read_source(source: str | None) -> tuple[bytes | None, str | None]:
    if not source:
        return None, "no source object recorded"
    if source.startswith("s3://"):
        return None, "source is on S3: copy it locally (aws s3 cp) and rebuild from a lake ingested from the copy"
    path = Path(source)
    try:
        if path.stat().st_size > _MAX_SOURCE_BYTES:
            return None, "source file too large"
        return path.read_bytes(), None
    except OSError:
        return None, "source file not found (moved or deleted since it was ingested)"


def _one(lake: Lake, table: str, column: str, value: str, dts: list[str] | None = None) -> dict[str, Any] | None:
    t = lake.read(table, dts, filter=pc.field(column) == value)
    rows = t.to_pylist()
    return rows[-1] if rows else None


def _session_part(lake: Lake, att: dict[str, Any]) -> dict[str, Any] | None:
    sid = att.get("session_id")
    if not sid:
        return None
    if att.get("session_source") == "live":
        t = lake.read("live_sessions", filter=pc.field("session_id") == sid).to_pylist()
        if not t:
            return None
        obs = t[-1]
        return {"source": "live", "session_id": sid, "user_id": obs.get("user_id"),
                "eni_private_ip_address": obs.get("eni_private_ip_address"), "observation": obs}
    row = _one(lake, "sessions", "session_id", sid)
    if row is None:
        return None
    data, why = _read_source(row.get("source_object"))
    header = line = None
    if data is not None:
        lines = data.decode("utf-8", "replace").splitlines()
        header = lines[0] if lines else None
        line = next((x for x in lines[1:] if sid in x), None)
    return {"source": "report", "session_id": sid, "user_id": row.get("user_id"),
            "eni_private_ip_address": row.get("eni_private_ip_address"), "object_key": row.get("source_object"),
            "report_sha256": ev.bundle.sha256_hex(data) if data is not None else None, "header": header,
            "line": line, "unavailable": why, "row": row}


def _digests_for(pipe: Pipeline, lake: Lake, rels: set[str]) -> list[dict[str, Any]]:
    """The digests listing these log files, and the digest after each (its successor's copy of the
    signature and its hash of the digest vouch for it even when its own metadata is gone)."""
    if not rels:
        return []
    t = lake.read("log_file_integrity", filter=pc.field("rel_key").isin(sorted(rels)))
    keys = {r["digest_key"] for r in t.to_pylist() if r.get("digest_key")}
    stage = pipe.integrity
    if stage is None:
        return []
    out, done = [], set()
    for key in sorted(keys):
        stored = stage.stored_digest(key)
        if stored is None:
            continue
        data, meta = stored
        out.append(ev.digest_part(str(meta.get("key")), data, {"Metadata": meta.get("metadata") or {}},
                                  meta.get("bucket")))
        done.add(relative_key(key))
        k = parse_digest_key(key)
        successors = lake.read("log_file_integrity", filter=(pc.field("file_kind") == "digest")
                               & pc.field("previous_key").isin([k.rel, key] if k else [key])).to_pylist()
        for s in successors:
            if s["rel_key"] in done:
                continue
            got = stage.stored_digest(s["object_key"])
            if got is not None:
                out.append(ev.digest_part(str(got[1].get("key")), got[0], {"Metadata": got[1].get("metadata") or {}},
                                          got[1].get("bucket")))
                done.add(s["rel_key"])
    return out


def build(lake: Lake, config: Config, bucket: str, key: str, event_id: str | None = None,
          now: datetime | None = None) -> dict[str, Any] | None:
    writes = lake.read("s3_writes", filter=(pc.field("bucket") == bucket) & (pc.field("key") == key)).to_pylist()
    if event_id:
        writes = [w for w in writes if w["event_id"] == event_id]
    if not writes:
        return None
    pipe = Pipeline(lake, config)
    parts_writes, log_files, sessions = [], {}, {}
    for w in sorted(writes, key=lambda x: (x["event_time"], x["event_id"])):
        att = _one(lake, "attributed_activity", "event_id", w["event_id"], [w["dt"]]) or {}
        att.pop("dt", None)
        att["source_ip"] = att.get("source_ip") or w.get("source_ip")
        data, why = _read_source(w.get("source_object"))
        write_rel = relative_key(w["source_object"]) if w.get("source_object") else None
        if write_rel and write_rel not in log_files:
            log_files[write_rel] = ev.log_file_part(w["source_object"], data, why)
        logon_rel, logon_rec = None, None
        if att.get("logon_event_id"):
            logon = _one(lake, "logons", "event_id", att["logon_event_id"])
            if logon and logon.get("source_object"):
                ldata, lwhy = _read_source(logon["source_object"])
                logon_rel = relative_key(logon["source_object"])
                log_files.setdefault(logon_rel, ev.log_file_part(logon["source_object"], ldata, lwhy))
                logon_rec = ev.find_record(ldata, att["logon_event_id"])
        s = _session_part(lake, att)
        if s is not None:
            sessions[s["session_id"]] = s
        parts_writes.append({"event_id": w["event_id"], "attribution": att, "write_log_file": write_rel,
                             "write_record": ev.find_record(data, w["event_id"]), "logon_log_file": logon_rel,
                             "logon_record": logon_rec})
    digests = _digests_for(pipe, lake, set(log_files))
    keys: dict[str, dict[str, Any]] = {}
    ring = pipe.integrity.keys if pipe.integrity is not None else KeyRing()
    for d in digests:
        seen = ev.bundle.digest_seen(d["object_key"], ev.bundle._unb64(d["content_gzip_b64"]) or b"", None)
        fp = seen.parsed.digest.public_key_fingerprint if seen.parsed else None
        k = ring.get(fp) if fp else None
        if fp and k is not None:
            keys[fp] = ev.key_part(fp, k.pkcs1_der())
    made = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ev.assemble({"name": "auditcorr", "version": __version__, "created_at": made},
                       {"bucket": bucket, "key": key}, parts_writes, list(log_files.values()),
                       list(sessions.values()), digests, list(keys.values()))


# -- the commands ------------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option("--lake", default="./lake", show_default=True, help="lake folder")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="AUDITCORR_CONFIG")
@click.option("--bucket", default=None)
@click.option("--key", default=None)
@click.option("--event-id", default=None, help="only this write of the object")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="the bundle file to write")
@click.pass_context
def evidence(ctx: click.Context, lake: str, config_path: str | None, bucket: str | None, key: str | None,
             event_id: str | None, out: str | None) -> None:
    """Write an evidence bundle for the writes of s3://BUCKET/KEY (``evidence verify FILE`` checks one)."""
    if ctx.invoked_subcommand is not None:
        return
    if not (bucket and key and out):
        raise click.UsageError("--bucket, --key and --out are required (or: auditcorr evidence verify FILE)")
    from auditcorr import config as cfgmod

    try:
        config = cfgmod.load(config_path)
    except cfgmod.ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    doc = build(Lake.open(lake), config, bucket, key, event_id)
    if doc is None:
        raise click.ClickException(f"no write of s3://{bucket}/{key} in the lake")
    Path(out).write_bytes(ev.dumps(doc))
    gone = [lf["rel_key"] for lf in doc["log_files"] if lf.get("content_gzip_b64") is None]
    click.echo(f"wrote {out}: {len(doc['writes'])} write(s), {len(doc['log_files'])} log file(s), "
               f"{len(doc['digests'])} digest(s), {len(doc['public_keys'])} key(s); sha256 {doc['bundle_sha256']}")
    for rel in gone:
        click.echo(f"  log file not available (see the bundle): {posixpath.basename(rel)}", err=True)


@evidence.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--public-keys-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="CloudTrail public keys obtained independently (<fingerprint>.der/.pem or list-public-keys JSON)")
def verify_cmd(file: str, public_keys_dir: str | None) -> None:
    """Re-check a bundle offline: hashes, signatures, records, session; exit status 1 if anything fails."""
    try:
        doc = orjson.loads(Path(file).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException("not a JSON evidence bundle") from exc
    trusted = load_key_directory(Path(public_keys_dir)) if public_keys_dir else None
    ok, lines = ev.summary(ev.verify(doc, trusted))
    click.echo("\n".join(lines))
    click.echo("bundle holds" if ok else "bundle does NOT hold")
    if not ok:
        raise SystemExit(1)

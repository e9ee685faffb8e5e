"""Parse: CloudTrail ``.json.gz`` -> the normalised Arrow tables, against the parse limit.

The limit is what any parser must at least do with the same files: gzip decompression plus
``orjson.loads`` of the body, nothing else (no field extraction, no table).  The candidate is
``parse_cloudtrail`` exactly as the pipeline calls it.  Both run over the same files held in memory,
interleaved.  Variants that were tried (other decompressors, the typed decoder alone, pyarrow's JSON
reader) are measured on the same files for the record.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson

from .common import Report, Stats, interleaved, mb, ratios, section

BAR = 0.5  # parse rate at least half the limit's


def load(files: list[Path]) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in files]


def limit(items: list[tuple[str, bytes]]) -> int:
    n = 0
    for _, data in items:
        n += len(orjson.loads(gzip.decompress(data))["Records"])
    return n


def parse_all(items: list[tuple[str, bytes]]) -> tuple[int, int]:
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import parse_cloudtrail

    cfg = Config()
    writes = logons = 0
    for name, data in items:
        p = parse_cloudtrail(data, name, cfg)
        writes += p.writes.num_rows
        logons += p.logons.num_rows
    return writes, logons


def fast_path_share(items: list[tuple[str, bytes]]) -> float:
    """Share of files that the typed (msgspec) path parsed without falling back."""
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import _parse_fast, decode_body

    cfg = Config()
    ok = sum(_parse_fast(decode_body(d), n, cfg) is not None for n, d in items)
    return ok / len(items) if items else 1.0


def run(report: Report, world: Any, runs: int, variants: bool = True, max_variant_files: int = 10) -> dict[str, Any]:
    section(f"1. Parse: {len(world.cloudtrail_files)} CloudTrail files, {world.n_records:,} records "
            f"({world.n_writes:,} writes + logons)")
    items = load(world.cloudtrail_files)
    comp = sum(len(d) for _, d in items)
    raw = sum(len(gzip.decompress(d)) for _, d in items)
    n_records = limit(items)
    writes, logons = parse_all(items)
    fast = fast_path_share(items)
    correct = writes == world.n_writes and logons == world.n_sessions and n_records == world.n_records
    print(f"  files {len(items)}, {mb(comp):.1f} MB gzip, {mb(raw):.1f} MB JSON, {n_records:,} records; parsed "
          f"{writes:,} writes + {logons:,} logons (expected {world.n_writes:,} + {world.n_sessions:,}): "
          f"{'ok' if correct else 'MISMATCH'}; typed fast path on {fast:.0%} of files")
    stats, _ = interleaved({"limit": lambda: limit(items), "parse": lambda: parse_all(items)}, runs)
    lim, par = stats["limit"], stats["parse"]
    share = ratios(lim, par)  # limit time / parse time = parse rate as a share of the limit's
    print(f"  limit (gzip + orjson.loads): {lim.fmt()}  = {n_records / lim.median:,.0f} rec/s, "
          f"{mb(raw) / lim.median:.0f} MB/s JSON")
    print(f"  parse_cloudtrail           : {par.fmt()}  = {n_records / par.median:,.0f} rec/s, "
          f"{mb(raw) / par.median:.0f} MB/s JSON, {mb(comp) / par.median:.1f} MB/s gzip")
    met = correct and share.median >= BAR
    report.add("parse", "parse_cloudtrail rate vs parse limit", f"{n_records:,} rec / {mb(raw):.0f} MB",
               f"{par.fmt()}; {n_records / par.median:,.0f} rec/s, {mb(raw) / par.median:.0f} MB/s",
               f"gzip+orjson.loads {lim.fmt()}; {n_records / lim.median:,.0f} rec/s",
               f"{share.median:.0%} of limit (per-run {share.min:.0%}-{share.max:.0%})",
               f">= {BAR:.0%} of limit; same tables", met)
    out: dict[str, Any] = {"limit": lim.as_dict(), "parse": par.as_dict(), "share": share.as_dict(),
                           "records": n_records, "mb_json": mb(raw), "mb_gzip": mb(comp), "correct": correct,
                           "fast_path_share": fast}
    if variants:
        out["variants"] = tried(report, items[:max_variant_files], runs, par.median / len(items))
    return out


def tried(report: Report, items: list[tuple[str, bytes]], runs: int, parse_per_file: float) -> dict[str, Any]:
    """What else was tried, measured on the same files (informational: no bar)."""
    from auditcorr.ingest.cloudtrail_fast import decode_typed

    datas = [d for _, d in items]
    bodies = [gzip.decompress(d) for d in datas]
    out: dict[str, Any] = {}
    fns = {"gzip": lambda: [gzip.decompress(d) for d in datas]}
    try:
        from isal import igzip

        fns["isal"] = lambda: [igzip.decompress(d) for d in datas]
    except ImportError:
        report.note("isal not installed: decompression with ISA-L not measured (pip install isal)")
    try:
        from zlib_ng import gzip_ng

        fns["zlib-ng"] = lambda: [gzip_ng.decompress(d) for d in datas]
    except ImportError:
        report.note("zlib-ng not installed: decompression with zlib-ng not measured (pip install zlib-ng)")
    st, _ = interleaved(fns, runs)
    n = len(items)
    print(f"  tried: decompression of {n} files: " + ", ".join(f"{k} {v.fmt('ms')}" for k, v in st.items()))
    g = st["gzip"]
    for k in ("isal", "zlib-ng"):
        if k in st:
            r = ratios(g, st[k])
            saved = (g.median - st[k].median) / n / parse_per_file
            report.add("parse (tried)", f"decompress with {k} vs gzip (stdlib zlib)", f"{n} files",
                       st[k].fmt("ms"), f"gzip.decompress {g.fmt('ms')}", f"{r.median:.2f}x",
                       f"info: would cut parse time by {saved:.0%}", None)
    out["decompress"] = {k: v.as_dict() for k, v in st.items()}

    st2, _ = interleaved({"orjson": lambda: [orjson.loads(b) for b in bodies],
                          "typed": lambda: [decode_typed(b) for b in bodies]}, runs)
    r = ratios(st2["orjson"], st2["typed"])
    report.add("parse (tried)", "msgspec typed decode vs orjson.loads (no gzip)", f"{n} files",
               st2["typed"].fmt("ms"), f"orjson.loads {st2['orjson'].fmt('ms')}", f"{r.median:.2f}x",
               "info: adopted (ADR 0005)", None)
    out["decode"] = {k: v.as_dict() for k, v in st2.items()}
    try:
        import pyarrow.json as pj

        def arrow_json() -> None:
            for b in bodies:  # one JSON document per file: the block must hold it whole
                pj.read_json(io.BytesIO(b), read_options=pj.ReadOptions(block_size=len(b) + 1, use_threads=False))

        st3, _ = interleaved({"orjson": lambda: [orjson.loads(b) for b in bodies], "arrow": arrow_json}, runs)
        r = ratios(st3["orjson"], st3["arrow"])
        report.add("parse (tried)", "pyarrow.json.read_json vs orjson.loads (1 thread)", f"{n} files",
                   st3["arrow"].fmt("ms"), f"orjson.loads {st3['orjson'].fmt('ms')}", f"{r.median:.2f}x",
                   "info: not adopted (blobs become inferred structs)", None)
        out["arrow_json"] = {k: v.as_dict() for k, v in st3.items()}
    except Exception as exc:  # noqa: BLE001 - informational only
        report.note(f"pyarrow.json.read_json failed on a CloudTrail body: {type(exc).__name__}: {exc}")
    return out


def per_file_stats(stats: Stats, n_files: int) -> Stats:
    return Stats([t / n_files for t in stats.runs])

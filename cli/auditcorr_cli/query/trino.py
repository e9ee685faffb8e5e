"""Athena engine v3 (Trino) SQL -> DuckDB SQL that answers exactly as Athena would, or a refusal.

sqlglot parses the Trino text; the tree is rewritten bottom-up wherever the engines disagree, then
generated for DuckDB with ``unsupported_level=RAISE``.  What cannot be made to agree raises
:class:`UnsupportedSQL` naming the construct, why, and what to write instead.  Where the disagreement
depends on a value's type, known only when DuckDB binds the query, the translation carries a
``CASE WHEN typeof(x) ...`` guard: DuckDB folds ``typeof`` while planning (no cost), and a rejected
branch raises ``error('auditcorr: ...')`` (a ``duckdb.Error``) instead of answering differently.

Fixed: ``/`` (Trino truncates integer/integer toward zero, divides reals truly: exactly DuckDB 2's
``//``, which keeps the integer type); ``date_diff`` (whole units elapsed = DuckDB ``datesub``);
``CAST(.. AS varchar)`` (timestamps as ``2026-03-02 08:38:05.000 UTC``, JSON strings unquoted,
``varchar(n)`` truncates); ``CAST(real AS integer)`` rounds half away from zero; ``json_format``;
order-preserving ``array_distinct``; Trino's NULL logic in ``contains``/``any_match``/``all_match``/
``none_match``; ``array_position`` 0 when absent; NULL from ``regexp_extract`` without a match,
``split_part`` past the end, ``json_extract_scalar`` of an object, ``json_array_length`` of a
non-array; ``''`` from ``substr(s, 0)``; ``$1`` in ``regexp_replace``; ``from_iso8601_timestamp``
and ``from_unixtime`` at millisecond precision; DATE results of ``date_add``/``date_trunc``;
``to_iso8601``, ``format_datetime`` (Joda subset), ``url_extract_host`` (java.net.URI hosts);
``millisecond`` (of the second); ``auditcorr.<table>`` -> ``<table>``.  In ``trino_more`` (decisions
and their Trino sources in its docstring): ``_col<i>`` names of unaliased columns; ``json_parse``
feeding JSON functions; ``from_iso8601_timestamp`` offsets and ``AT TIME ZONE``/``at_timezone``
where compared, ordered, read as fields or (fixed offsets) cast to varchar; ``format`` (%s %d %x
%.Nf ...); ``try``; IPADDRESS compares and ``contains('cidr', ip)`` (IPv4, IPv6, IPv4-mapped).

Refused: DECIMAL division (Trino rounds to scale: ``1.0 / 3 = 0.3``), ``map_agg``,
``array_union/intersect/except`` (order), ``json_parse``/``JSON '..'`` elsewhere and ``CAST(.. AS
JSON)`` (Trino canonicalises JSON), IPPREFIX, shown IPADDRESS values, column-expanding or
multi-array ``UNNEST``, zoned values shown or truncated, ``typeof``, wildcard JSON paths, other
``format`` conversions; at run time: doubles/times/arrays/JSON objects to varchar, URLs outside the
recognised subset, non-UTC zoned values shown, parsed JSON Trino would print or pick differently,
an address of the other IP version than the CIDR, IP zone ids, ``format`` arguments Java prints
differently.  Only one SELECT/WITH/VALUES/SHOW/DESCRIBE statement runs; DuckDB file readers and
system functions are refused.

Known residue: DuckDB re-serialises JSON numbers (``1.50`` -> ``1.5``; Trino keeps the text); a
regexp group that did not participate is '' (Trino NULL); timestamps are formatted as timestamp(3)
(literals with another precision are refused, but not through a CTE); approximate aggregates stay
approximate; integer sums come back as HUGEINT (same value).  Relies on DuckDB >= 2.0's ``//``.
"""

from __future__ import annotations

import re
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError

from . import trino_more
from ._sqltpl import UnsupportedSQL
from ._sqltpl import err as _err
from ._sqltpl import lit as _lit
from ._sqltpl import refuse as _refuse
from ._sqltpl import tpl as _tpl

__all__ = ["UnsupportedSQL", "translate"]

T = exp.DataType.Type
_INT = {T.TINYINT, T.SMALLINT, T.INT, T.BIGINT}
_FLOAT = {T.DOUBLE, T.FLOAT}
_TS = {T.TIMESTAMP, T.TIMESTAMPTZ}
_DATE_UNITS = {"day", "week", "month", "quarter", "year"}
_DIFF_UNITS = _DATE_UNITS | {"millisecond", "second", "minute", "hour"}
_READ_ONLY = (exp.Select, exp.SetOperation, exp.Values, exp.Describe)
_DENY_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_", "sqlite_", "postgres_", "mysql_", "iceberg_",
                  "delta_", "load_", "install_", "json_execute")
_DENY = {"glob", "query", "query_table", "getenv", "current_setting", "sniff_csv", "st_read", "which_secret",
         "file_search_path", "scan_arrow_ipc"}
_UTC = {"UTC", "Z", "+00:00", "+0000", "ETC/UTC"}
_WHY = {
    "map_agg": "DuckDB has no map_agg with Trino's semantics; use array_agg of the keys and values",
    "array_union": "DuckDB returns the elements in another order; use array_distinct(concat(a, b))",
    "arrayintersect": "DuckDB returns the elements in another order; use filter(a, x -> contains(b, x))",
    "arrayexcept": "DuckDB returns the elements in another order; use filter(a, x -> NOT contains(b, x))",
    "typeof": "type names differ between the engines",
    "with_timezone": "DuckDB timestamps carry no zone; the local engine works in UTC only",
    "parsejson": "Trino canonicalises parsed JSON (sorted keys, re-written numbers) and DuckDB does not; "
                 "json_parse translates only inside json_extract/json_extract_scalar/json_array_length/"
                 "json_format or a cast to varchar",
}
_JODA = {"yyyy": "%Y", "yy": "%y", "MMMM": "%B", "MMM": "%b", "MM": "%m", "M": "%-m", "dd": "%d", "d": "%-d",
         "HH": "%H", "H": "%-H", "hh": "%I", "h": "%-I", "mm": "%M", "m": "%-M", "ss": "%S", "s": "%-S",
         "SSS": "%g", "SSSSSS": "%f", "a": "%p", "EEEE": "%A", "EEE": "%a", "DDD": "%j", "z": "UTC",
         "ZZ": "+00:00", "Z": "+0000"}
_URL_CH = r"A-Za-z0-9_.!~*'():@&=+$,;/-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST = (rf"((?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?|(?:{_OCTET}\.){{3}}{_OCTET})")
_URL_HEAD = rf"^[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9_.!~*'();:&=+$,-]*@)?{_HOST}"
_URL_RE = (rf"{_URL_HEAD}(?::[0-9]*)?(?:/(?:[{_URL_CH}]|%[0-9A-Fa-f]{{2}})*)?"
           rf"(?:\?(?:[{_URL_CH}?\[\]]|%[0-9A-Fa-f]{{2}})*)?(?:#(?:[{_URL_CH}?\[\]]|%[0-9A-Fa-f]{{2}})*)?$")


def _unit(node: exp.Expression, allowed: set[str], fn: str) -> str:
    unit = node.args.get("unit")
    name = unit.name.lower() if isinstance(unit, (exp.Var, exp.Literal)) else ""
    if name not in allowed:
        raise _refuse(fn, f"unit {unit.sql() if unit else None} is not one of {sorted(allowed)}")
    return name


def _kind(node: exp.Expression) -> str | None:
    """'int', 'float' or 'decimal' when the Trino type is evident from the text alone."""
    if isinstance(node, (exp.Paren, exp.Neg)):
        return _kind(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = node.this.lower()
        return "float" if "e" in text else "decimal" if "." in text else "int"
    if isinstance(node, exp.Cast):
        to = node.to.this
        return "int" if to in _INT else "float" if to in _FLOAT else "decimal" if to == T.DECIMAL else None
    return "int" if isinstance(node, (exp.Count, exp.ArraySize, exp.Length)) else None


def _is_date(node: exp.Expression) -> bool:
    return (isinstance(node, exp.Cast) and node.to.this == T.DATE) or isinstance(
        node, (exp.CurrentDate, exp.Date, exp.FromISO8601Date))


def _div(node: exp.Div) -> exp.Expression:
    a, b = node.this, node.expression
    kinds = {_kind(a), _kind(b)}
    if None not in kinds:
        if "decimal" in kinds and "float" not in kinds:
            raise _refuse("DECIMAL division", "Trino rounds the quotient to the larger scale of its operands "
                          "(1.0 / 3 = 0.3); CAST an operand to DOUBLE")
        return exp.IntDiv(this=a, expression=b)
    msg = "DECIMAL division: Trino rounds the quotient to the operands' scale; CAST an operand to DOUBLE"
    return _tpl(f"CASE WHEN typeof(_a_ + _b_) LIKE 'DECIMAL%' THEN {_err(msg)} ELSE _a_ // _b_ END", a=a, b=b)


def _date_typed(node: exp.Expression, value: exp.Expression, unit: str, fn: str) -> exp.Expression:
    """``date_add``/``date_trunc`` of a DATE is a DATE in Trino, a TIMESTAMP in DuckDB."""
    if _is_date(value):
        if unit not in _DATE_UNITS:
            raise _refuse(fn, f"unit {unit} does not apply to a DATE")
        return exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))
    msg = f"{fn} of a DATE value: wrap the value in CAST(... AS DATE) so the result stays a DATE"
    return _tpl(f"CASE WHEN typeof(_x_) = 'DATE' THEN {_err(msg)} ELSE _n_ END", x=value, n=node)


def _ts_literal_precision(node: exp.Expression, fn: str) -> None:
    for c in node.find_all(exp.Cast):
        if c.to.this in _TS and isinstance(c.this, exp.Literal) and c.this.is_string:
            m = re.search(r"\d:\d\d:\d\d(?:\.(\d*))?", c.this.this)
            if not m or len(m.group(1) or "") != 3:
                raise _refuse(fn, "a timestamp built from a literal has the literal's precision in Trino; "
                              "write the literal with exactly 3 fractional digits (08:00:00.000)")


def _text(node: exp.Cast) -> exp.Expression:
    """CAST(x AS varchar), Trino's formatting, dispatched on the type DuckDB binds ``x`` to."""
    j = "CAST(CAST(_x_ AS VARCHAR) AS JSON)"
    bad = "CAST(... AS varchar) of a {0}: Trino formats or refuses it differently; {1}"
    out = _tpl(f"""CASE WHEN _x_ IS NULL THEN NULL
      WHEN typeof(_x_) = 'TIMESTAMP WITH TIME ZONE'
        THEN strftime(CAST(CAST(_x_ AS VARCHAR) AS TIMESTAMPTZ), '%Y-%m-%d %H:%M:%S.%g UTC')
      WHEN typeof(_x_) LIKE 'TIMESTAMP%'
        THEN strftime(CAST(CAST(_x_ AS VARCHAR) AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%g')
      WHEN typeof(_x_) = 'JSON' THEN CASE WHEN json_type({j}) = 'VARCHAR' THEN {j} ->> '$'
        WHEN json_type({j}) IN ('BIGINT', 'UBIGINT', 'BOOLEAN') THEN CAST(_x_ AS VARCHAR)
        WHEN json_type({j}) = 'NULL' THEN NULL
        ELSE {_err(bad.format('JSON object, array or float', 'use json_format or json_extract_scalar'))} END
      WHEN typeof(_x_) IN ('DOUBLE', 'FLOAT')
        THEN {_err(bad.format('DOUBLE/REAL', 'Trino writes scientific notation (3.5E0); use format_number'))}
      WHEN typeof(_x_) LIKE 'TIME%' OR typeof(_x_) LIKE '%]' OR typeof(_x_) LIKE 'STRUCT%'
        OR typeof(_x_) LIKE 'MAP%' OR typeof(_x_) IN ('INTERVAL', 'BLOB')
        THEN {_err(bad.format('time, interval, varbinary, array, map or row', 'format its parts explicitly'))}
      ELSE _c_ END""", x=node.this, c=exp.Cast(this=node.this.copy(), to=exp.DataType.build("VARCHAR")))
    params = node.to.expressions
    return _tpl("left(_v_, _n_)", v=out, n=params[0].this) if params else out


def _iso8601(x: exp.Expression) -> exp.Expression:
    return _tpl(f"""CASE WHEN typeof(_x_) = 'TIMESTAMP WITH TIME ZONE'
        THEN strftime(CAST(CAST(_x_ AS VARCHAR) AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S.%gZ')
      WHEN typeof(_x_) LIKE 'TIMESTAMP%'
        THEN strftime(CAST(CAST(_x_ AS VARCHAR) AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%g')
      WHEN typeof(_x_) = 'DATE' THEN strftime(CAST(CAST(_x_ AS VARCHAR) AS DATE), '%Y-%m-%d')
      ELSE {_err('to_iso8601 takes a date or timestamp')} END""", x=x)


def _joda(pattern: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) is not None:  # quoted text; '' is a quote
            return m.group(1).replace("%", "%%") or "'"
        if m.group(0) == "%":
            return "%%"
        if m.group(0) not in _JODA:
            raise _refuse("format_datetime", f"pattern letter(s) {m.group(0)!r} are not translated; "
                          f"supported: {', '.join(_JODA)}")
        return _JODA[m.group(0)]
    return re.sub(r"'([^']*)'|([A-Za-z])\2*|%", one, pattern)


def _match(kind: str, arr: exp.Expression, fn: exp.Expression) -> exp.Expression:
    hit, result = {"any": ("true", "true"), "all": ("false", "false"), "none": ("true", "false")}[kind]
    return _tpl(f"""CASE WHEN _a_ IS NULL THEN NULL
      WHEN list_contains(list_transform(_a_, _f_), {hit}) THEN {result}
      WHEN list_count(list_transform(_a_, _f_)) < len(_a_) THEN NULL ELSE NOT {result} END""", a=arr, f=fn)


def _json_path(node: exp.Expression, fn: str) -> None:
    path = node.expression
    ok = isinstance(path, exp.JSONPath) and all(
        isinstance(p, exp.JSONPathRoot) or (isinstance(p, exp.JSONPathKey) and isinstance(p.this, str)) or (
            isinstance(p, exp.JSONPathSubscript) and isinstance(p.this, int)) for p in path.expressions)
    if not ok:
        raise _refuse(fn, "only literal paths of keys and indexes ($.a.b, $.a[0]) translate exactly")


def _regexp_replacement(rep: exp.Expression) -> exp.Expression:
    """Trino's replacement ($n a group, backslash-x a literal x) -> RE2's (backslash-n a group)."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return "\\" + m.group(1)
        if m.group(2) is not None:
            return "\\\\" if m.group(2) == "\\" else m.group(2)
        raise _refuse("regexp_replace", "only $0-$9 group references translate")
    if not (isinstance(rep, exp.Literal) and rep.is_string):
        raise _refuse("regexp_replace", "the replacement must be a string literal")
    return exp.Literal.string(re.sub(r"\$(\d)|\\(.)|[$\\]", one, rep.this))


def _anonymous(node: exp.Anonymous) -> exp.Expression | None:
    name, args = node.name.lower(), node.expressions
    if name in ("any_match", "all_match", "none_match") and len(args) == 2:
        return _match(name.split("_")[0], args[0], args[1])
    if name == "to_iso8601" and len(args) == 1:
        return _iso8601(args[0])
    if name == "format_datetime" and len(args) == 2:
        if not (isinstance(args[1], exp.Literal) and args[1].is_string):
            raise _refuse("format_datetime", "the pattern must be a string literal")
        return _tpl(f"strftime(_x_, {_lit(_joda(args[1].this))})", x=args[0])
    if name == "at_timezone" and len(args) == 2:  # Athena's function form of AT TIME ZONE
        zoned = exp.AtTimeZone(this=args[0].copy(), zone=args[1].copy())
        return trino_more.at_time_zone(zoned, _UTC, site=node)
    if name == "millisecond" and len(args) == 1:  # DuckDB's includes the seconds (5.123 s -> 5123)
        return _tpl("millisecond(_x_) % 1000", x=args[0])
    if name == "json_array_length" and len(args) == 1:  # DuckDB: 0 for a non-array, Trino: NULL
        return _tpl("CASE WHEN json_type(_j_) = 'ARRAY' THEN json_array_length(_j_) END", j=args[0])
    if name == "url_extract_host" and len(args) == 1:
        msg = "url_extract_host: URL outside the subset translated exactly (plain scheme://host URLs)"
        return _tpl(f"""CASE WHEN _u_ IS NULL THEN NULL WHEN regexp_matches(_u_, {_lit(_URL_RE)})
          THEN regexp_extract(_u_, {_lit(_URL_HEAD)}, 1) ELSE {_err(msg)} END""", u=args[0])
    if name in _WHY:
        raise _refuse(name, _WHY[name])
    return None


def _rewrite(node: exp.Expression, database: str) -> exp.Expression | None:
    if isinstance(node, exp.Div):
        return _div(node)
    if isinstance(node, exp.DateDiff):
        unit = exp.Literal.string(_unit(node, _DIFF_UNITS, "date_diff"))
        return exp.Anonymous(this="datesub", expressions=[unit, node.expression, node.this])
    if isinstance(node, exp.DateAdd):
        return _date_typed(node, node.this, _unit(node, _DIFF_UNITS, "date_add"), "date_add")
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        return _date_typed(node, node.this, _unit(node, _DIFF_UNITS, "date_trunc"), "date_trunc")
    if isinstance(node, exp.ArrayDistinct):
        return _tpl("list_filter(_a_, lambda ac_x, ac_i: list_position(_a_, ac_x) = ac_i)", a=node.this)
    if isinstance(node, exp.ArrayContains):
        if (isinstance(node.this, exp.Literal) and node.this.is_string) or trino_more.is_ip(node.expression):
            return trino_more.cidr_contains(node)
        return _tpl("""CASE WHEN list_contains(_a_, _x_) THEN true
          WHEN _x_ IS NULL OR list_count(_a_) < len(_a_) THEN NULL WHEN _a_ IS NOT NULL THEN false END""",
                    a=node.this, x=node.expression)
    if isinstance(node, exp.ArrayPosition):
        return _tpl("""CASE WHEN _a_ IS NOT NULL AND _x_ IS NOT NULL
          THEN coalesce(list_position(_a_, _x_), 0) END""",
                    a=node.this, x=node.expression)
    if isinstance(node, exp.RegexpExtract):
        return _tpl("CASE WHEN regexp_matches(_s_, _p_) THEN _n_ END", s=node.this, p=node.expression, n=node)
    if isinstance(node, exp.RegexpReplace) and node.args.get("replacement") is not None:
        node.set("replacement", _regexp_replacement(node.args["replacement"]))
    if isinstance(node, exp.SplitPart):
        s, d, i = node.this, node.args["delimiter"], node.args["part_index"]
        return _tpl(f"""CASE WHEN _i_ < 1 THEN {_err('split_part: index must be greater than zero')}
          WHEN _i_ > len(string_split(_s_, _d_)) THEN NULL ELSE _n_ END""", s=s, d=d, i=i, n=node)
    if isinstance(node, exp.JSONExtractScalar):
        _json_path(node, "json_extract_scalar")
        check = exp.Anonymous(this="json_type", expressions=[node.this.copy(), node.expression.copy()])
        scalar: exp.Expression = node
        if trino_more.is_parsed(node.this):
            scalar = trino_more.guard_parsed_path(node, node.this, node.expression, scalar=True)
        return _tpl("CASE WHEN _t_ IN ('OBJECT', 'ARRAY') THEN NULL ELSE _n_ END", t=check, n=scalar)
    if isinstance(node, exp.JSONExtract):
        _json_path(node, "json_extract")
        if trino_more.is_parsed(node.this):
            new = trino_more.guard_parsed_path(node, node.this, node.expression, scalar=False)
            if trino_more.shows_json_text(node):
                new = trino_more.prints_same(new)
            new.meta["json_parsed"] = True
            return new
    if isinstance(node, exp.JSONFormat):
        value = trino_more.prints_same(node.this) if trino_more.is_parsed(node.this) else node.this
        msg = _err("json_format takes a JSON value (from json_extract)")
        return _tpl(f"CASE WHEN typeof(_x_) = 'JSON' THEN CAST(_x_ AS VARCHAR) ELSE {msg} END", x=value)
    if isinstance(node, exp.ParseJSON):
        parsed = trino_more.json_parse(node)
        if parsed is None:
            raise _refuse("json_parse / JSON literal", _WHY["parsejson"])
        return parsed
    if isinstance(node, exp.Try):
        return trino_more.try_call(node)
    if isinstance(node, exp.Format):
        return trino_more.format_call(node)
    if isinstance(node, exp.UnixToTime):
        zone = node.args.get("zone")
        if any(node.args.get(k) is not None for k in ("hours", "minutes", "scale")) or (
                zone is not None and not (isinstance(zone, exp.Literal) and zone.this.upper() in _UTC)):
            raise _refuse("from_unixtime", "only from_unixtime(x) and from_unixtime(x, 'UTC') translate "
                          "(DuckDB timestamps carry no zone)")
        return _tpl("CAST(epoch_ms(CAST(floor(CAST(_x_ AS DOUBLE) * 1000 + 0.5) AS BIGINT)) AS TIMESTAMPTZ)",
                    x=node.this)
    if isinstance(node, exp.FromISO8601Timestamp):
        return trino_more.iso8601_timestamp(node, _UTC)
    if isinstance(node, exp.AtTimeZone):
        return trino_more.at_time_zone(node, _UTC)
    if isinstance(node, exp.Cast):
        to = node.to.this
        if to == T.IPADDRESS:
            return trino_more.ip_cast(node)
        if to == T.IPPREFIX:
            raise _refuse("CAST(... AS IPPREFIX)", "DuckDB has no IPPREFIX type; use contains('cidr', "
                          "CAST(ip AS IPADDRESS))")
        if to == T.JSON:
            raise _refuse("CAST(... AS JSON)", "Trino makes a JSON string of a varchar, DuckDB parses it")
        if to in (T.CHAR, T.NCHAR):
            raise _refuse("CAST(... AS char(n))", "Trino pads char(n) values; use varchar")
        if to in exp.DataType.TEXT_TYPES:
            return _text(node)
        if to in _INT and _kind(node.this) not in ("int", "decimal"):  # Trino rounds half away from zero
            r = type(node)(this=_tpl("round(TRY_CAST(CAST(_x_ AS VARCHAR) AS DOUBLE))", x=node.this),
                           to=node.to.copy())
            return _tpl("CASE WHEN typeof(_x_) IN ('DOUBLE', 'FLOAT') THEN _r_ ELSE _c_ END",
                        x=node.this, r=r, c=node)
        if to == T.TIMESTAMPTZ and isinstance(node.this, exp.Literal) and node.this.is_string:
            zone = re.sub(r"^\d{4}-\d\d-\d\d( \d\d?:\d\d(:\d\d(\.\d*)?)?)?\s*", "", node.this.this)
            if zone and zone.upper() not in _UTC:
                raise _refuse("timestamp literal with zone " + zone, "DuckDB keeps no zone; write it in UTC")
    if isinstance(node, exp.Unnest):
        alias = node.args.get("alias")
        columns = alias.columns if alias else []
        if len(node.expressions) > 1:
            raise _refuse("UNNEST of several arrays", "DuckDB does not zip arrays; unnest one array per join")
        if len(columns) > 1:
            raise _refuse("column-expanding UNNEST", "UNNEST of an array of rows or of a map into several "
                          "columns is not translated; unnest into one column and use its fields")
        msg = "UNNEST of an array of rows or a map expands into columns in Trino; unnest another array"
        node.set("expressions", [_tpl(f"""CASE WHEN typeof(_a_) LIKE 'STRUCT(%)[]'
          OR typeof(_a_) LIKE 'MAP(%)' THEN {_err(msg)} ELSE _a_ END""", a=node.expressions[0])])
    if isinstance(node, exp.Substring) and node.args.get("start") is not None:  # Trino: '' from 0
        zero = _tpl("left(_s_, 0 * _l_)", s=node.this, l=node.args.get("length") or exp.Literal.number(1))
        return _tpl("CASE WHEN _p_ = 0 THEN _z_ ELSE _n_ END", p=node.args["start"], z=zero, n=node)
    if isinstance(node, exp.Column) and node.db and node.db.lower() == database.lower():
        node.set("db", None)
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
        _table(node, database)
    if isinstance(node, exp.Anonymous):
        return _anonymous(node)
    if isinstance(node, exp.Func) and node.key in _WHY:
        raise _refuse(node.sql_name().lower(), _WHY[node.key])
    return None


def _table(node: exp.Table, database: str) -> None:
    catalog, db = node.catalog.lower(), node.db.lower()
    if (db or catalog) and not (db == database.lower() and catalog in ("", "awsdatacatalog")):
        raise _refuse(node.sql("trino"), f"only tables of the database {database!r} exist locally")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node.name):
        raise _refuse(f"table {node.name!r}", "not a Glue table name (DuckDB would read it as a file)")
    node.set("db", None)
    node.set("catalog", None)


def _check_statement(tree: exp.Expression, sql: str) -> None:
    show = isinstance(tree, exp.Command) and tree.name.upper() == "SHOW" and re.fullmatch(
        r"\s*(TABLES|COLUMNS\s+(FROM|IN)\s+[A-Za-z_][\w.]*)\s*", tree.expression.name, re.I)
    if not (isinstance(tree, _READ_ONLY) or show):
        raise _refuse(sql.split()[0].upper(), "only one read-only statement (SELECT, WITH, VALUES, SHOW, "
                      "DESCRIBE) can run")
    if tree.find(exp.Into):
        raise _refuse("SELECT ... INTO", "only read-only statements can run")
    for fn in tree.find_all(exp.Func):
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()
        if name in _DENY or name.startswith(_DENY_PREFIXES):
            raise _refuse(name, "a DuckDB function that reads files or the system, not Athena SQL")
        if name == "to_iso8601" or (isinstance(fn, exp.Cast) and fn.to.this in exp.DataType.TEXT_TYPES):
            _ts_literal_precision(fn.expressions[0] if name == "to_iso8601" else fn.this,
                                  name if name == "to_iso8601" else "CAST(timestamp AS varchar)")


def translate(sql: str, database: str = "auditcorr") -> str:
    """Athena (Trino) SQL -> DuckDB SQL answering identically; ``database.<table>`` becomes ``<table>``."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise UnsupportedSQL(f"not valid Athena (Trino) SQL: {first.get('description', exc)} "
                             f"(line {first.get('line', '?')}, column {first.get('col', '?')})") from exc
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements", "give exactly one statement")
    tree = cast(exp.Expression, statements[0])
    _check_statement(tree, sql)
    if isinstance(tree, exp.Command):
        return re.sub(rf"\b{re.escape(database)}\.", "", tree.sql("duckdb"), flags=re.I)
    tree = trino_more.name_columns(tree)
    for node in reversed(list(tree.walk(bfs=False))):  # children before parents
        new = _rewrite(cast(exp.Expression, node), database)
        if new is not None and new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise UnsupportedSQL(f"not translatable to DuckDB: {exc}") from exc

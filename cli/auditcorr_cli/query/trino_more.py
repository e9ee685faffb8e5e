"""More of Athena's answers, locally: the rewrites behind ``trino.translate`` for result column names,
``json_parse``, zoned timestamps (``from_iso8601_timestamp`` offsets, ``AT TIME ZONE``), ``format``,
``try``, ``IPADDRESS`` and CIDR ``contains``.  Each decision, with the Trino behaviour it copies:

* Names: Trino names an unaliased select item ``_col<i>``, ``i`` its position among the output
  columns (``*`` counts the columns it expands to); a column reference (``t.c``, ``r.f``) keeps its
  name.  Without a ``*`` before it the alias is written directly; otherwise (and inside subqueries,
  where a star above may expand it) a marker alias is written and :func:`athena_names` renames it
  by position once the result's columns are known.
* ``json_parse(x)`` (and ``JSON '..'``) is canonical JSON in Trino (keys sorted, numbers re-written
  by Jackson).  Translated to DuckDB ``json(x)`` (same failures on invalid text) only where it feeds
  ``json_extract_scalar``, ``json_extract``, ``json_array_length``, ``json_format`` or a cast to
  varchar; text DuckDB reads but Jackson rejects (trailing commas, NaN, Infinity) fails as in
  Athena; a guard raises at run time where the answer could differ: a duplicated key on the path,
  a fractional number as the scalar, and, where JSON text is shown, objects or fractional numbers
  (only strings, integers, booleans, null and arrays of those print identically).
* Zoned timestamps: a TIMESTAMP WITH TIME ZONE keeps its zone in Trino and DuckDB cannot carry one,
  so it translates by use: compared, ordered, ``to_unixtime``, ``date_diff`` in units up to hours,
  or zoned again with AT TIME ZONE -> the instant (Trino compares instants); read as fields
  (``hour``, ``day_of_week``, ``CAST AS date/timestamp``, ``format_datetime`` without zone letters,
  ...) -> the local wall-clock time; cast to varchar with a fixed offset -> Trino's text
  (``2020-05-11 11:15:05.055 +01:00``); anything else (shown, truncated, grouped, a named zone as
  text) with a zone other than UTC is refused.  AT TIME ZONE takes an Area/City zone (DuckDB's ICU data; refused: three-
  letter names, which Trino and ICU resolve differently) or a fixed ``+hh:mm`` offset.
* ``format(fmt, ...)`` is Java's Formatter (Locale.ENGLISH) over the arguments converted as
  Trino's FormatFunction does (integers -> Long, NULL -> ``null``).  Translated: ``%s`` (varchar,
  integers, boolean, date), ``%d``, ``%x``/``%X`` (two's complement of a Long), ``%.Nf``/``%f``
  (HALF_UP of the shortest decimal form of a double, or of the exact decimal), ``%%``, ``%n``, the
  flags ``-`` and ``0``, widths and ``n$`` indexes; other conversions and flags are refused, and so,
  at run time, are arguments Java would print differently (doubles for ``%s``, timestamps, ...).
* ``try(x)`` is DuckDB's TRY when nothing in ``x`` is a run-time refusal (a refusal swallowed into
  NULL would be a silent difference); failures Athena has too (an invalid IP address) become NULL.
* IPADDRESS is a 128-bit number (UHUGEINT): IPv4 a.b.c.d is ``::ffff:a.b.c.d`` as in Trino, so the
  two spellings are equal; text is parsed by the RFC 3986 grammar Guava's InetAddresses accepts
  (octets with leading zeros and zone ids are refused: Guava's handling varies by version).  Such
  values may be compared, ordered, tested IS NULL and with ``contains('cidr', ip)``, whose network must be a
  literal, checked as Trino does (host bits of an IPv4 network must be zero; an IPv4-mapped IPv6
  network is IPv4).  An address of the other IP version than the network raises at run time:
  Trino releases differ (an error, later false).  Showing an IPADDRESS value is refused.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlglot import exp

from ._sqltpl import ATHENA_FAILS_PREFIX, REFUSED_PREFIX, err, fail, lit, refuse, tpl

_COL_MARK = "_col?"  # a marker alias: no Trino identifier can spell it unquoted
_MARKED = re.compile(r"_col\?\d+")

T = exp.DataType.Type


# ---------------------------------------------------------------- result column names

def athena_names(names: list[str]) -> list[str]:
    """Output column names as Athena gives them: marker aliases become ``_col<position>``."""
    return [f"_col{i}" if _MARKED.fullmatch(n) else n for i, n in enumerate(names)]


def _is_star(item: exp.Expression) -> bool:
    return isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star))


def _name_select(select: exp.Select, top: bool) -> None:
    star_before = False
    for i, item in enumerate(select.expressions):
        if _is_star(item):
            star_before = True
            continue
        if isinstance(item, (exp.Alias, exp.Column)):
            continue
        name = f"_col{i}" if top and not star_before else f"{_COL_MARK}{i}"
        item.replace(exp.alias_(item.copy(), name, quoted=True))


def name_columns(tree: exp.Expression) -> exp.Expression:
    """Alias every unaliased, non-column select item as Athena names it (see the module docstring)."""
    first = tree
    while isinstance(first, exp.SetOperation):
        first = first.this
    while isinstance(first, exp.Subquery):
        first = first.this
    for select in list(tree.find_all(exp.Select)):
        _name_select(select, top=select is first)
    for values in list(tree.find_all(exp.Values)):
        if values is tree or not isinstance(values.parent, (exp.Subquery, exp.From, exp.Join)) or (
                values.args.get("alias") is not None and values.args["alias"].columns):
            continue
        width = len(values.expressions[0].expressions) if values.expressions else 0
        alias = values.args.get("alias") or exp.TableAlias(this=exp.to_identifier("_values"))
        alias.set("columns", [exp.to_identifier(f"{_COL_MARK}{i}", quoted=True) for i in range(width)])
        values.set("alias", alias)
    if isinstance(tree, exp.Values) and tree.expressions:  # VALUES alone: _col0, _col1, ...
        width = len(tree.expressions[0].expressions)
        return exp.select("*").from_(exp.Subquery(this=tree.copy(), alias=exp.TableAlias(
            this=exp.to_identifier("_values"),
            columns=[exp.to_identifier(f"_col{i}", quoted=True) for i in range(width)])))
    return tree


# ---------------------------------------------------------------- try()

_GUARD = "refusal_guard"


def try_call(node: exp.Try) -> exp.Expression:
    """Trino's try(): NULL where the expression fails; a run-time refusal must not become NULL.

    A rewritten node may carry the condition under which it refuses and that refusal's message
    (``meta['refusal_guard']``): that check is then made outside the TRY, unless it sits in a lambda
    (whose variables are bound inside); so is a refusal decided by the argument types alone.
    """
    inner = node.this

    def in_lambda(n: exp.Expression) -> bool:
        up = n.parent
        while up is not None and up is not node and not isinstance(up, exp.Lambda):
            up = up.parent
        return isinstance(up, exp.Lambda)

    guards: list[exp.Expression] = []
    for guarded in [n for n in inner.walk() if n.meta.get(_GUARD) is not None]:
        if in_lambda(guarded):
            continue
        for condition, message in guarded.meta[_GUARD]:
            guards.append(condition)
            for n in list(guarded.walk()):
                if _error_message(n) == REFUSED_PREFIX + message:
                    n.replace(exp.Null())
    # a refusal decided by types alone (CASE WHEN typeof(..) ..) holds for every row: decide it outside
    for when in [n for n in inner.walk() if isinstance(n, exp.If)]:
        cond, then = when.this, when.args.get("true")
        if then is None or not _error_message(then).startswith(REFUSED_PREFIX) or in_lambda(when):
            continue
        if all(c.find_ancestor(exp.Typeof) is not None for c in cond.find_all(exp.Column)):
            guards.append(cond.copy())
            then.replace(exp.Null())
    for n in list(inner.walk()):
        if _error_message(n).startswith(ATHENA_FAILS_PREFIX):
            n.replace(exp.Null())
    if any(_error_message(n).startswith(REFUSED_PREFIX) for n in inner.walk()):
        raise refuse("try()", "the expression holds a check the local engine makes at run time; TRY would "
                     "turn its refusal into NULL. Take the expression out of try()")
    volatile = [n for n in inner.walk() if isinstance(n, (exp.CurrentTimestamp, exp.Rand)) or (
        isinstance(n, exp.Anonymous) and n.name.lower() in ("now", "random", "uuid", "error"))]
    if volatile:
        raise refuse("try()", "DuckDB's TRY cannot hold a volatile function such as now() or random()")
    new: exp.Expression = exp.Try(this=inner)
    if guards:
        check = " OR ".join(f"({g.sql('duckdb')})" for g in guards)
        new = tpl(f"CASE WHEN {check} THEN {err('try(): a value the local engine cannot translate exactly')} "
                  "ELSE _t_ END", t=new)
    for flag in (_IP, _IP_SAFE, _PARSED):  # try(x) has x's type
        if inner.meta.get(flag) is not None:
            new.meta[flag] = inner.meta[flag]
    return new


def _error_message(n: Any) -> str:
    if isinstance(n, exp.Anonymous) and n.name.lower() == "error" and n.expressions:
        msg = n.expressions[0]
        if isinstance(msg, exp.Literal) and msg.is_string:
            return str(msg.this)
    return ""


# ---------------------------------------------------------------- zoned timestamps

_CMP = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Between, exp.In)
_FIELDS = (exp.Hour, exp.Minute, exp.Second, exp.Day, exp.DayOfMonth, exp.Month, exp.Year, exp.Quarter,
           exp.DayOfWeekIso, exp.DayOfWeek, exp.DayOfYear, exp.WeekOfYear, exp.YearOfWeek, exp.Date,
           exp.Extract, exp.TimeToStr)
_FIELD_FUNCS = {"millisecond", "yow", "year_of_week", "format_datetime"}
_SHORT_UNITS = {"millisecond", "second", "minute", "hour"}
# the ISO 8601 forms both Joda and DuckDB's cast read (not: hour alone, a comma before the fraction)
_ISO_TS = (r"^\d{4}-\d\d-\d\d(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?"
           r"(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)?)?$")
# text Joda's ISO parser surely rejects (a space, other letters): Athena fails on it too
_ISO_CHARS = r"[-+0-9T][-+0-9TWZtwz:.,]*"
_ISO_UNSURE_MSG = ("from_iso8601_timestamp: an ISO 8601 form not translated (week or ordinal dates, basic "
                   "format...); write yyyy-MM-dd[THH:mm[:ss[.fff]][Z|+hh:mm]]")
_OFFSET_ZONE = re.compile(r"([+-])(\d\d):(\d\d)")
_AREA_ZONE = re.compile(r"[A-Za-z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+)+")


def _use_site(node: exp.Expression) -> tuple[exp.Expression, Any]:
    """The node's consumer, looking through parentheses and try() (which keeps its argument's type)."""
    child, parent = node, node.parent
    while isinstance(parent, (exp.Paren, exp.Try)):
        child, parent = parent, parent.parent
    return child, parent


def zone_use(node: exp.Expression) -> str:
    """'instant', 'fields', 'text' or 'value': how the zoned timestamp ``node`` is used by its parent."""
    child, parent = _use_site(node)
    if isinstance(parent, exp.Cast) and parent.to.this in exp.DataType.TEXT_TYPES:
        return "text"
    if isinstance(parent, (*_CMP, exp.Ordered, exp.TimeToUnix)):
        return "instant"
    zoned_again = isinstance(parent, exp.Anonymous) and parent.name.lower() == "at_timezone"
    if (isinstance(parent, exp.AtTimeZone) and child.arg_key == "this") or (
            zoned_again and child is parent.expressions[0]):
        return "instant"
    if isinstance(parent, exp.DateDiff):
        unit = parent.args.get("unit")
        return "instant" if unit is not None and unit.name.lower() in _SHORT_UNITS else "value"
    if isinstance(parent, exp.Cast) and parent.to.this in (T.DATE, T.TIMESTAMP):
        return "fields"
    if isinstance(parent, _FIELDS) and child.arg_key in ("this", "expression"):
        return "fields"
    if isinstance(parent, exp.Anonymous) and parent.name.lower() in _FIELD_FUNCS and child is parent.expressions[0]:
        if parent.name.lower() == "format_datetime":
            pattern = parent.expressions[1] if len(parent.expressions) > 1 else None
            if not (isinstance(pattern, exp.Literal) and pattern.is_string) or re.search(
                    r"[zZ]", re.sub(r"'[^']*'", "", pattern.this)):
                return "value"
        return "fields"
    return "value"


_ZONED_HINT = ("only compared, ordered, given to to_unixtime/date_diff (units up to hours), read as "
               "fields (hour(), CAST(... AS date), format_datetime without zone letters) or, for a fixed "
               "offset, cast to varchar translate")


def iso8601_timestamp(node: exp.Expression, utc: set[str]) -> exp.Expression:
    """from_iso8601_timestamp(s): Trino keeps the offset as the value's zone, at millisecond precision."""
    s = node.this
    use = zone_use(node)
    bad = (f"CASE WHEN regexp_full_match(_s_, {lit(_ISO_CHARS)}) THEN {err(_ISO_UNSURE_MSG)} "
           f"ELSE {fail('from_iso8601_timestamp: Invalid format')} END")
    guards = [(tpl(f"NOT regexp_full_match(_s_, {lit(_ISO_TS)}) AND regexp_full_match(_s_, {lit(_ISO_CHARS)})",
                   s=s), _ISO_UNSURE_MSG)]
    local = tpl(rf"""CASE WHEN NOT regexp_full_match(_s_, {lit(_ISO_TS)}) THEN {bad}
          ELSE date_trunc('millisecond', CAST(regexp_replace(_s_, '^([^T]*T[0-9:.,]*)(Z|[+-][0-9:]*)$', '\1')
            AS TIMESTAMP)) END""", s=s)
    if use == "fields":  # the local wall-clock time is the text without its offset
        local.meta[_GUARD] = guards
        return local
    if use == "text":  # Trino: '2020-05-11 11:15:05.055 +01:00'; a zero offset is the zone UTC
        text = tpl(r"""strftime(_l_, '%Y-%m-%d %H:%M:%S.%g') || ' ' || CASE
          WHEN NOT regexp_matches(_s_, 'T.*[+-]\d\d(:?\d\d)?$') OR regexp_matches(_s_, 'T.*[+-]00(:?00)?$')
            THEN 'UTC'
          ELSE regexp_extract(_s_, '([+-]\d\d):?(\d\d)?$', 1) || ':'
            || coalesce(nullif(regexp_extract(_s_, '([+-]\d\d):?(\d\d)?$', 2), ''), '00') END""", l=local, s=s)
        text.meta[_GUARD] = guards
        return text
    instant = f"CASE WHEN NOT regexp_full_match(_s_, {lit(_ISO_TS)}) THEN {bad} ELSE " \
              "date_trunc('millisecond', CAST(_s_ AS TIMESTAMPTZ)) END"
    if use == "instant":
        new = tpl(instant, s=s)
        new.meta[_GUARD] = guards
        return new
    msg = ("from_iso8601_timestamp with a non-UTC offset: Trino keeps the offset as the value's zone; "
           + _ZONED_HINT)
    zoned = r"regexp_matches(_s_, 'T.*[+-]\d\d(:?\d\d)?$') AND NOT regexp_matches(_s_, 'T.*[+-]00(:?00)?$')"
    new = tpl(f"CASE WHEN {zoned} THEN {err(msg)} ELSE {instant} END", s=s)
    new.meta[_GUARD] = [*guards, (tpl(zoned, s=s), msg)]
    return new


def at_time_zone(node: exp.AtTimeZone, utc: set[str], site: exp.Expression | None = None) -> exp.Expression:
    """``x AT TIME ZONE z`` (or ``at_timezone(x, z)``, then ``site`` is the call in the tree)."""
    zone = node.args.get("zone")
    if not (isinstance(zone, exp.Literal) and zone.is_string):
        raise refuse("AT TIME ZONE", "the zone must be a string literal")
    instant = exp.Cast(this=node.this, to=exp.DataType.build("TIMESTAMPTZ"))
    if zone.this.upper() in utc:
        return instant
    use = zone_use(site if site is not None else node)
    if use == "instant":
        return instant
    offset = _OFFSET_ZONE.fullmatch(zone.this)
    if use == "text" and offset:  # Trino: '2026-03-02 14:08:05.000 +05:30'
        shown = "+00:00" if zone.this[1:] == "00:00" else zone.this
        local = at_time_zone_local(instant, offset)
        return tpl(f"strftime(_l_, '%Y-%m-%d %H:%M:%S.%g') || {lit(' ' + ('UTC' if shown == '+00:00' else shown))}",
                   l=local)
    if use in ("value", "text"):
        raise refuse("AT TIME ZONE", "the result keeps the zone in Trino and DuckDB timestamps carry none; "
                     + _ZONED_HINT)
    if offset:
        return at_time_zone_local(instant, offset)
    if not _AREA_ZONE.fullmatch(zone.this):
        raise refuse(f"AT TIME ZONE {zone.this!r}", "write the zone as Area/City (Europe/Paris) or +hh:mm")
    return tpl(f"timezone({lit(zone.this)}, _x_)", x=instant)


def at_time_zone_local(instant: exp.Expression, offset: re.Match[str]) -> exp.Expression:
    """The wall-clock time of ``instant`` at a fixed offset (DuckDB's ICU knows no '+hh:mm' zone)."""
    minutes = (1 if offset.group(1) == "+" else -1) * (int(offset.group(2)) * 60 + int(offset.group(3)))
    return tpl(f"CAST(timezone('UTC', _x_) + INTERVAL ({minutes}) MINUTE AS TIMESTAMP)", x=instant)


# ---------------------------------------------------------------- json_parse

_JSON_CONSUMERS = (exp.JSONExtractScalar, exp.JSONExtract)
_PRINTS_SAME = "('VARCHAR', 'BOOLEAN', 'NULL', 'BIGINT', 'UBIGINT')"
_PARSED = "json_parsed"


def json_parse(node: exp.ParseJSON) -> exp.Expression | None:
    """json_parse(x) where its consumer answers as on Trino's canonical text; None if not such a use."""
    child, parent = _use_site(node)
    ok = (isinstance(parent, (*_JSON_CONSUMERS, exp.JSONFormat)) and child.arg_key == "this") or (
        isinstance(parent, exp.Anonymous) and parent.name.lower() == "json_array_length"
        and child is parent.expressions[0]) or (
        isinstance(parent, exp.Cast) and parent.to.this in exp.DataType.TEXT_TYPES)
    if not ok:
        return None
    # DuckDB's reader also takes trailing commas and NaN/Infinity, which Jackson (json_parse) rejects
    outside_strings = r"""regexp_replace(_x_, '"(?:[^"\\]|\\.)*"', '""', 'g')"""
    lax = (rf"regexp_matches({outside_strings}, ',[ \t\n\r]*[\]}}]') OR regexp_matches({outside_strings}, "
           r"'(?i)(^|[^a-z])(nan|[+-]?inf(inity)?)($|[^a-z])')")
    new = tpl(f"CASE WHEN {lax} THEN {fail('json_parse: Cannot convert value to JSON')} ELSE json(_x_) END",
              x=node.this)
    new.meta[_PARSED] = True
    return new


def is_parsed(node: exp.Expression) -> bool:
    return bool(node.meta.get(_PARSED))


def path_duplicates(source: exp.Expression, path: exp.Expression) -> str:
    """SQL true when a key on the literal ``path`` occurs twice in its object (Jackson keeps one)."""
    checks, prefix = [], "$"
    for part in path.expressions:
        if isinstance(part, exp.JSONPathKey):
            key = str(part.this)
            checks.append(f"len(list_filter(json_keys(_j_, {lit(prefix)}), lambda ac_k: ac_k = {lit(key)})) > 1")
            prefix += '."' + key.replace('"', '\\"') + '"'
        elif isinstance(part, exp.JSONPathSubscript):
            prefix += f"[{part.this}]"
    return " OR ".join(checks) or "false"


def guard_parsed_path(node: exp.Expression, source: exp.Expression, path: exp.Expression,
                      scalar: bool) -> exp.Expression:
    """Refuse at run time what Trino's canonical JSON would answer differently."""
    dup = path_duplicates(source, path)
    msg = "json_parse: a key on the path occurs twice in the object; Trino's json_parse keeps only one"
    extra = ""
    if scalar:
        kind = exp.Anonymous(this="json_type", expressions=[source.copy(), path.copy()])
        why = ("json_parse: Trino re-writes fractional numbers (Java Double.toString); "
               "use json_extract_scalar on the varchar")
        extra = f"WHEN {kind.sql('duckdb')} = 'DOUBLE' THEN {err(why)} "
    return tpl(f"CASE WHEN {dup} THEN {err(msg)} {extra}ELSE _n_ END", j=source, n=node)


def prints_same(value: exp.Expression) -> exp.Expression:
    """JSON text of a parsed value, or a refusal where Trino's canonical text could differ."""
    msg = ("JSON text of an object or a fractional number: Trino prints json_parse's canonical form "
           "(sorted keys, Java numbers); extract the scalars with json_extract_scalar")
    return tpl(f"""CASE WHEN json_type(_v_) IN ('OBJECT', 'DOUBLE') OR (json_type(_v_) = 'ARRAY' AND
        len(list_filter(CAST(_v_ AS JSON[]), lambda ac_e: json_type(ac_e) NOT IN {_PRINTS_SAME})) > 0)
      THEN {err(msg)} ELSE _v_ END""", v=value)


def shows_json_text(node: exp.Expression) -> bool:
    """Whether the JSON value ``node`` reaches the output as text (not consumed by a JSON function)."""
    child, parent = _use_site(node)
    if isinstance(parent, _JSON_CONSUMERS) and child.arg_key == "this":
        return False
    if isinstance(parent, exp.Anonymous) and parent.name.lower() == "json_array_length":
        return False
    if isinstance(parent, exp.Cast) and parent.to.this in exp.DataType.TEXT_TYPES:
        return False  # the varchar cast refuses objects, arrays and doubles itself
    return True


# ---------------------------------------------------------------- format()

_SPEC = re.compile(r"%(?:(\d+)\$)?([-#+ 0,(<]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _arg_text(x: exp.Expression) -> exp.Expression:
    """Java's String.valueOf of Trino's converted argument, for %s."""
    return tpl(f"""CASE WHEN _x_ IS NULL THEN 'null'
      WHEN typeof(_x_) IN ('VARCHAR', 'BOOLEAN', 'DATE', 'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT',
        'HUGEINT') THEN CAST(_x_ AS VARCHAR)
      WHEN typeof(_x_) LIKE 'DECIMAL(%' AND NOT (CAST(regexp_extract(typeof(_x_), ',(\\d+)\\)', 1) AS INTEGER) > 6
        AND abs(CAST(_x_ AS DOUBLE)) < 0.000001) THEN CAST(_x_ AS VARCHAR)
      ELSE {err('format %s of a double, timestamp, JSON or other value: Java prints it differently; '
                'cast it to varchar first')} END""", x=x)


_INTS = "('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT')"


def _pad(text: str, width: str | None, left: bool, zero: bool) -> str:
    if not width:
        return text
    w = int(width)
    # Java pads to the UTF-16 length; DuckDB counts characters: pad ASCII text only
    ascii_only = "regexp_full_match(ac_t, '[\\x00-\\x7F]*')"
    pad = f"repeat({lit('0' if zero else ' ')}, greatest({w} - length(ac_t), 0))"
    body = f"ac_t || {pad}" if left else f"{pad} || ac_t"
    guard = err("format: width applied to non-ASCII text (Java counts UTF-16 units)")
    return (f"list_transform([{text}], lambda ac_t: CASE WHEN length(ac_t) >= {w} THEN ac_t "
            f"WHEN NOT {ascii_only} THEN {guard} ELSE {body} END)[1]")


def format_call(node: exp.Format) -> exp.Expression:
    fmt, args = node.this, list(node.expressions)
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise refuse("format", "the format string must be a literal")
    pieces: list[str] = []
    holders: dict[str, exp.Expression] = {}
    ordinary = 0
    pos = 0
    text = fmt.this
    for m in _SPEC.finditer(text):
        if m.start() > pos:
            pieces.append(lit(text[pos:m.start()]))
        pos = m.end()
        index, flags, width, precision, conv = m.groups()
        if conv == "%":
            pieces.append(lit("%"))
            continue
        if conv == "n":
            pieces.append(lit("\n"))
            continue
        if set(flags) - {"-", "0"} or conv not in ("s", "d", "x", "X", "f") or (
                precision is not None and conv != "f") or ("0" in flags and conv == "s") or (
                ("-" in flags or "0" in flags) and not width) or ("-" in flags and "0" in flags):
            raise refuse("format", f"specifier {m.group(0)!r} is not translated; supported: %s %d %x %X %.Nf "
                         "%% %n with the flags - and 0, widths and n$ indexes")
        if index is not None:
            i = int(index) - 1
        else:
            i = ordinary
            ordinary += 1
        if i < 0 or i >= len(args):
            raise refuse("format", f"{m.group(0)!r} has no argument: Athena fails (MissingFormatArgument)")
        name = f"a{len(holders)}"
        holders[name] = args[i]
        x = f"_{name}_"
        left, zero = "-" in flags, "0" in flags
        if conv == "s":
            holders[name + "s"] = _arg_text(args[i])
            pieces.append(_pad(f"_{name}s_", width, left, False))
        elif conv in ("d", "x", "X"):
            if conv == "d":  # printf's %d pads and signs as Java does
                done = f"printf({lit('%' + flags + (width or '') + 'd')}, {x})"
            else:  # Java: the two's complement of the Long
                done = _pad(f"{'lower' if conv == 'x' else 'upper'}(to_hex(CAST({x} AS BIGINT)))", width, left, zero)
            wrong = fail(f"format: %{conv} needs an integer argument")
            pieces.append(f"CASE WHEN {x} IS NULL THEN {_pad(lit('null'), width, left, False)} "
                          f"WHEN typeof({x}) NOT IN {_INTS} THEN {wrong} ELSE {done} END")
        else:
            digits = int(precision) if precision is not None else 6
            if width:
                raise refuse("format", f"specifier {m.group(0)!r}: a width on %f is not translated")
            real = f"typeof({x}) IN ('DOUBLE', 'FLOAT')"
            wrong = fail("format: %f needs a floating-point or decimal argument")
            odd = err("format: %f of NaN or Infinity")
            # Java: sign of the value (also of -0.0), then HALF_UP of the shortest decimal form
            negative = f"({x} < 0 OR ({real} AND {x} = 0 AND starts_with(CAST({x} AS VARCHAR), '-')))"
            number = (f"CAST(CAST(CAST(abs(CASE WHEN {real} THEN CAST({x} AS DOUBLE) END) AS VARCHAR) "
                      f"AS DECIMAL(38, {digits})) AS VARCHAR)")
            exact = f"CAST(CAST(abs({x}) AS DECIMAL(38, {digits})) AS VARCHAR)"
            pieces.append(f"""CASE WHEN {x} IS NULL THEN 'null'
              WHEN NOT ({real} OR typeof({x}) LIKE 'DECIMAL(%') THEN {wrong}
              WHEN {real} AND (isnan(CAST({x} AS DOUBLE)) OR isinf(CAST({x} AS DOUBLE))) THEN {odd}
              ELSE CASE WHEN {negative} THEN '-' ELSE '' END || CASE WHEN {real} THEN {number} ELSE {exact} END
              END""")
    if pos < len(text):
        pieces.append(lit(text[pos:]))
    if "%" in re.sub(_SPEC, "", text):
        raise refuse("format", "a lone % in the format string: Athena fails (UnknownFormatConversion)")
    return tpl(" || ".join(pieces) or "''", **holders)


# ---------------------------------------------------------------- IPADDRESS

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9a-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_V4})"


def _v6_regex() -> str:
    """RFC 3986's IPv6address: ``::`` stands for one group or more (as in Guava)."""
    h = _H16
    forms = [rf"(?:{h}:){{6}}{_LS32}", rf"::(?:{h}:){{5}}{_LS32}", rf"(?:{h})?::(?:{h}:){{4}}{_LS32}"]
    for before, after in ((1, 3), (2, 2), (3, 1)):
        forms.append(rf"(?:(?:{h}:){{0,{before}}}{h})?::(?:{h}:){{{after}}}{_LS32}")
    forms += [rf"(?:(?:{h}:){{0,4}}{h})?::{_LS32}", rf"(?:(?:{h}:){{0,5}}{h})?::{h}",
              rf"(?:(?:{h}:){{0,6}}{h})?::"]
    return "^(?:" + "|".join(forms) + ")$"


_V6 = _v6_regex()
_MAPPED = 0xFFFF << 32
_IP = "ipaddress"
_IP_SAFE = "ipaddress_or_null"  # the same value, NULL instead of any error (for checks made outside TRY)
_IP_UNSURE_MSG = "IPADDRESS with a zone id (%) or non-ASCII digits: Athena versions parse it differently"
_IP_BAD_MSG = "Cannot cast value to IPADDRESS"
_IP_UNSURE = "%|[^\\x00-\\x7f]"  # newer Guava drops a zone id; Character.digit takes any Unicode digit
_IP_SQL = f"""list_transform([lower(CAST(_x_ AS VARCHAR))], lambda ac_s: CASE
  WHEN ac_s IS NULL THEN NULL
  WHEN regexp_full_match(ac_s, {lit('^' + _V4 + '$')}) THEN CAST({_MAPPED} AS UHUGEINT) + list_reduce(list_transform(
    string_split(ac_s, '.'), lambda ac_o: CAST(ac_o AS UHUGEINT)), lambda ac_a, ac_b: ac_a * 256 + ac_b)
  WHEN regexp_full_match(ac_s, {lit(_V6)}) THEN list_transform([CASE WHEN contains(ac_s, '.')
      THEN regexp_extract(ac_s, '^(.*:)', 1) || list_transform([list_reduce(list_transform(
        string_split(regexp_extract(ac_s, '[^:]*$'), '.'), lambda ac_o: CAST(ac_o AS BIGINT)),
        lambda ac_a, ac_b: ac_a * 256 + ac_b)], lambda ac_v: printf('%x:%x', ac_v // 65536, ac_v % 65536))[1]
      ELSE ac_s END], lambda ac_t: list_transform([string_split(ac_t, '::')], lambda ac_p:
      list_reduce(list_transform(list_concat(
        CASE WHEN ac_p[1] = '' THEN [] ELSE string_split(ac_p[1], ':') END,
        list_transform(range(8 - len(CASE WHEN ac_p[1] = '' THEN [] ELSE string_split(ac_p[1], ':') END)
          - len(CASE WHEN len(ac_p) = 1 OR ac_p[2] = '' THEN [] ELSE string_split(ac_p[2], ':') END)),
          lambda ac_z: '0'),
        CASE WHEN len(ac_p) = 1 OR ac_p[2] = '' THEN [] ELSE string_split(ac_p[2], ':') END),
        lambda ac_g: CAST('0x' || ac_g AS UHUGEINT)), lambda ac_a, ac_b: ac_a * 65536 + ac_b))[1])[1]
  WHEN regexp_matches(ac_s, {lit(_IP_UNSURE)}) THEN {err(_IP_UNSURE_MSG)}
  ELSE {fail(_IP_BAD_MSG)} END)[1]"""

_IP_USES = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Between,
            exp.In, exp.Ordered)


def is_ip(node: exp.Expression) -> bool:
    while isinstance(node, (exp.Paren, exp.Try)):
        node = node.this
    return (isinstance(node, exp.Cast) and node.to.this == T.IPADDRESS) or bool(node.meta.get(_IP))


def ip_cast(node: exp.Cast) -> exp.Expression:
    """CAST(x AS IPADDRESS) / IPADDRESS 'x' -> the address as a 128-bit number, where only its order matters."""
    child, parent = _use_site(node)
    why = ("an IPADDRESS value can only be compared with another, ordered or tested with "
           "contains('cidr', ip) locally; compare the text otherwise")
    if (isinstance(parent, exp.ArrayContains) and child.arg_key == "expression") or (
            isinstance(parent, exp.Is) and isinstance(parent.expression, exp.Null)):
        pass
    elif isinstance(parent, _IP_USES):
        others = [parent.this] + ([parent.expression] if parent.args.get("expression") is not None else []) + list(
            parent.expressions) + [parent.args[k] for k in ("low", "high") if parent.args.get(k) is not None]
        if not isinstance(parent, exp.Ordered) and not all(is_ip(o) for o in others if o is not None):
            raise refuse("IPADDRESS", why)
    else:
        raise refuse("IPADDRESS", why)
    parsed = _parse_ip(node.this.this) if isinstance(node.this, exp.Literal) and node.this.is_string else None
    if parsed is not None:  # a valid literal is parsed here, once (an invalid one fails when run, as in Athena)
        constant = tpl(f"CAST('{parsed[0]}' AS UHUGEINT)")
        constant.meta[_IP] = True
        constant.meta[_IP_SAFE] = constant.copy()
        return constant
    new = tpl(_IP_SQL, x=node.this)
    new.meta[_IP] = True
    new.meta[_IP_SAFE] = tpl(_IP_SQL.replace(err(_IP_UNSURE_MSG), "NULL").replace(fail(_IP_BAD_MSG), "NULL"),
                             x=node.this)
    new.meta[_GUARD] = [(tpl(f"regexp_matches(lower(CAST(_x_ AS VARCHAR)), {lit(_IP_UNSURE)})", x=node.this),
                         _IP_UNSURE_MSG)]
    return new


def _parse_ip(text: str) -> tuple[int, bool] | None:
    """(128-bit value, is IPv4 in Java's sense) of an address Guava accepts, or None."""
    s = text.lower()
    if re.fullmatch(_V4, s):
        return _MAPPED + int(ipaddress.IPv4Address(s)), True
    if re.fullmatch(_V6, s):
        value = int(ipaddress.IPv6Address(s))
        return value, value >> 32 == 0xFFFF  # InetAddress.getByAddress makes ::ffff:a.b.c.d an Inet4Address
    return None


def cidr_contains(node: exp.ArrayContains) -> exp.Expression:
    """contains('net/len', ip) as Trino's IpAddressFunctions.contains decides it."""
    network, address = node.this, node.expression
    if not (isinstance(network, exp.Literal) and network.is_string):
        raise refuse("contains(cidr, ip)", "the network must be a string literal")
    if not is_ip(address):
        raise refuse("contains(cidr, ip)", "the address must be CAST(... AS IPADDRESS) or IPADDRESS '...'")
    cidr = network.this
    base, _, length = cidr.partition("/")
    athena = "Athena fails too: "
    if not _:
        raise refuse("contains(cidr, ip)", athena + "Invalid CIDR")
    parsed = _parse_ip(base)
    if parsed is None:
        raise refuse("contains(cidr, ip)", athena + "Invalid network IP address (or a form not translated)")
    if not re.fullmatch(r"\d{1,3}", length):
        raise refuse("contains(cidr, ip)", f"prefix length {length!r} is not translated")
    value, v4 = parsed
    prefix = int(length)
    bits = 32 if v4 else 128
    if prefix > bits:
        raise refuse("contains(cidr, ip)", athena + "Prefix length exceeds address length")
    if v4 and (value & 0xFFFFFFFF) & (0xFFFFFFFF >> prefix):
        raise refuse("contains(cidr, ip)", athena + "Invalid CIDR (host bits set)")
    mixed_msg = ("contains(cidr, ip) of an address of the other IP version: Athena releases differ "
                 "(an error, later false); test the version first")
    mixed = err(mixed_msg)
    def shifted(by: int) -> str:
        return f"(_ip_ >> CAST({by} AS UHUGEINT))"
    if v4:  # the address's low 32 bits against the network's
        shift = 32 - prefix
        net = (value & 0xFFFFFFFF) >> shift
        low = f"({shifted(0)} - CAST({_MAPPED} AS UHUGEINT))"
        test = f"({low} >> CAST({shift} AS UHUGEINT)) = CAST('{net}' AS UHUGEINT)"
        same = f"{shifted(32)} = CAST({0xFFFF} AS UHUGEINT)"
    else:
        net = value >> (128 - prefix)
        test = f"{shifted(128 - prefix)} = CAST('{net}' AS UHUGEINT)"
        same = f"{shifted(32)} <> CAST({0xFFFF} AS UHUGEINT)"
    if prefix == 0:
        test = "true"
    decide = f"CASE WHEN _ip_ IS NULL THEN NULL WHEN NOT ({same}) THEN {mixed} ELSE {test} END"
    # the address is parsed once per row (bound to a lambda variable), not once per use
    new = tpl("list_transform([_a_], lambda ac_ip: " + decide.replace("_ip_", "ac_ip") + ")[1]", a=address)
    safe = address.meta.get(_IP_SAFE)
    if safe is not None:  # for try(): the version check, made where no parse failure can raise
        new.meta[_GUARD] = [(tpl(f"coalesce(NOT ({same}), false)", ip=safe), mixed_msg)]
    return new

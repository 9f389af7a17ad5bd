"""Search over the latest version of each package: SQLite FTS5 plus filter columns.

The index row of a package is rewritten in the transaction of every change that can move
its latest version, so search never lags the registry. Text relevance is FTS5's bm25,
with an exact name match ranked first; the Eghact filters (type, capability, category,
keyword) are plain column predicates.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from .records import SearchHit, SearchQuery
from .visibility import clause as visible_clause

_WORD = re.compile(r"[\w@/.-]+", re.UNICODE)


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    block = doc.get("eghact") if isinstance(doc.get("eghact"), dict) else None
    keywords = [k for k in doc.get("keywords") or [] if isinstance(k, str)]
    caps: list[str] = []
    category = None
    kind = "library"
    framework = None
    if block:
        kind = str(block.get("type") or "library")
        framework = block.get("version")
        meta = block.get("metadata") if isinstance(block.get("metadata"), dict) else {}
        category = meta.get("category")
        keywords += [k for k in meta.get("keywords") or [] if isinstance(k, str) and k not in keywords]
        capabilities = block.get("capabilities") if isinstance(block.get("capabilities"), dict) else {}
        for group in ("required", "optional"):
            caps += [c for c in capabilities.get(group) or [] if isinstance(c, str)]
    return {
        "type": kind,
        "framework": framework,
        "category": category,
        "capabilities": caps,
        "keywords": keywords,
        "license": doc.get("license") if isinstance(doc.get("license"), str) else None,
    }


# The packages columns search filters on, in search_fields' order.
SEARCH_COLUMNS = ("description", "keywords", "type", "category", "capabilities", "license", "summary")


def search_fields(latest_doc: dict[str, Any]) -> tuple[Any, ...]:
    """The values of SEARCH_COLUMNS for a package whose latest version is ``latest_doc``."""
    summary = _summary(latest_doc)
    description = latest_doc.get("description") if isinstance(latest_doc.get("description"), str) else ""
    return (description, " ".join(summary["keywords"]), summary["type"], summary["category"],
            " " + " ".join(summary["capabilities"]) + " ", summary["license"], json.dumps(summary))


def index_search_row(conn: sqlite3.Connection, rowid: int, name: str, fields: tuple[Any, ...] | None, *,
                     replace: bool = True) -> None:
    """The package's full-text row, from its search_fields (None: no live version, no row).
    ``replace=False`` for a package row just inserted, which has no full-text row yet."""
    if replace:
        conn.execute("DELETE FROM search_fts WHERE rowid=?", (rowid,))
    if fields is not None:
        conn.execute("INSERT INTO search_fts (rowid, name, description, keywords) VALUES (?, ?, ?, ?)",
                     (rowid, name.replace("/", " ").replace("-", " ") + " " + name, fields[0], fields[1]))


def update_search_row(conn: sqlite3.Connection, name: str, latest_doc: dict[str, Any] | None) -> None:
    rowid = conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone()[0]
    fields = None if latest_doc is None else search_fields(latest_doc)
    if fields is not None:
        conn.execute(f"UPDATE packages SET {'=?, '.join(SEARCH_COLUMNS)}=? WHERE name=?", (*fields, name))
    index_search_row(conn, rowid, name, fields)


def parse_text(text: str, query: SearchQuery) -> SearchQuery:
    """npm-style qualifiers inside ``text``: ``keywords:a,b type:theme capability:dom:read category:x``."""
    words: list[str] = []
    updates: dict[str, Any] = {}
    keywords = list(query.keywords)
    for token in text.split():
        key, sep, value = token.partition(":")
        if sep and value and key in ("keywords", "keyword"):
            keywords += [k for k in value.split(",") if k]
        elif sep and value and key in ("type", "category", "capability"):
            updates[key] = value
        else:
            words.append(token)
    updates["text"] = " ".join(words)
    updates["keywords"] = tuple(keywords)
    return SearchQuery(**{**query.__dict__, **updates})


def _fts_expression(text: str) -> str | None:
    terms = [w.replace('"', "") for w in _WORD.findall(text.lower())]
    terms = [t for t in terms if t]
    if not terms:
        return None
    # Each term is quoted (FTS5 syntax in user text must not be interpreted) and prefix-matched.
    return " ".join(f'"{t}"*' for t in terms)


def search_packages(conn: sqlite3.Connection, query: SearchQuery) -> tuple[int, list[SearchHit]]:
    visible, args = visible_clause(query.names, "p.name", conn)
    where = ["p.full_doc IS NOT NULL", visible]
    if query.type:
        where.append("p.type = ?")
        args.append(query.type)
    if query.category:
        where.append("p.category = ?")
        args.append(query.category)
    if query.capability:
        # Capabilities are stored space-delimited; a bare kind matches any argument of it.
        where.append("(p.capabilities LIKE ? ESCAPE '\\' OR p.capabilities LIKE ? ESCAPE '\\')")
        escaped = query.capability.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args += [f"% {escaped} %", f"% {escaped}:%"]
    for keyword in query.keywords:
        where.append("(' ' || p.keywords || ' ') LIKE ? ESCAPE '\\'")
        args.append("% " + keyword.replace("%", "\\%").replace("_", "\\_") + " %")
    fts = _fts_expression(query.text)
    if query.text.strip() and fts is None:
        return 0, []  # text with nothing searchable in it matches nothing, not everything
    if fts:
        source = "search_fts f JOIN packages p ON p.rowid = f.rowid"
        where.append("search_fts MATCH ?")
        args.append(fts)
        # bm25 is lower-is-better; an exact name match goes first.
        order = "(p.name = ?) DESC, bm25(search_fts, 10.0, 2.0, 4.0), p.name"
        score = "-bm25(search_fts, 10.0, 2.0, 4.0)"
        order_args: list[Any] = [query.text.strip().lower()]
    else:
        source = "packages p"
        order, score, order_args = "p.name", "1.0", []
    clause = " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT p.name, p.latest, p.description, p.keywords, p.modified, p.summary, {score} "
        f"FROM {source} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, *order_args, query.size, query.offset],
    ).fetchall()
    hits = [
        SearchHit(name=r[0], version=r[1] or "", description=r[2] or "", keywords=tuple((r[3] or "").split()),
                  date=r[4], summary=json.loads(r[5]) if r[5] else {}, score=float(r[6]))
        for r in rows
    ]
    return total, hits

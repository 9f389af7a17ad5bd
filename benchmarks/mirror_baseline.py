"""The mirror benchmark's baseline: the work a bundle does, done with standard tools.

``tar --zstd`` alone packs bytes; a bundle also hashes every file (a signed index of sha512
digests) and an import also checks every digest and loads the rows the origin serves from. So
``benchmarks/mirror.py`` compares our export and import with these, run in the same round:

- **export**: ``sha512sum`` of every file of the bundle's data (packuments, tarballs, events,
  index), written to ``SHA512SUMS``, then ``tar --zstd -cf`` of the files and that list (tar
  and one ``zstd`` process at its default level 3, compressing on one thread: two processes
  at most). ``tar -I 'zstd -T0'`` (zstd on every core) is timed beside it as information,
  outside the baseline's total;
- **import**: ``tar --zstd -xf`` of that archive (zstd decompresses on one thread whatever
  ``-T`` says), ``sha512sum -c`` of every file against the list, then a bulk load of the
  same ``packages``, ``versions`` and ``dist_tags`` rows our import writes, into the mirror
  schema's tables and indexes (created from the mirror database's own SQL), in one
  transaction, committed durably.

The load is done by the ``sqlite3`` command-line tool (Debian: ``apt-get install sqlite3``)
with ``.import --csv``, its bulk loader; without it, by Python's ``sqlite3`` ``executemany`` in
one transaction (the same SQLite library, one C call per table). The rows are taken from the
database our import built, and written to CSV before anything is timed: the baseline is
*given* the rows, while our import must derive them from the packuments (parse them, split out
each version), so the comparison leans towards the baseline. The load leaves out what our
import also writes (the search index, the feed's events, the mirror's state and audit record)
and stores NULL columns as empty strings (CSV has no NULL); it keeps the page size our fresh
mirror database uses (16 KiB) and SQLite's default durability (the commit is fsynced).

Each step is its own process, timed like ours (wall seconds, CPU seconds of it and its
children), with no ``sync`` between the steps of one side, as a script would run them.
"""

from __future__ import annotations

import csv
import itertools
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TABLES = ("packages", "versions", "dist_tags")
INFO_T0 = "tar_c_zstd_T0_info"  # a step timed beside the baseline, not counted in it
SUMS = "SHA512SUMS"
PAGE_SIZE = 16384  # what the origin's fresh mirror database uses (storage/sqlite/fresh.py)


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True)
class Rows:
    """The rows to load: one CSV per table, beside the SQL that creates the tables and indexes."""

    folder: Path
    count: int
    bytes: int

    @property
    def schema(self) -> Path:
        return self.folder / "schema.sql"

    def csv(self, table: str) -> Path:
        return self.folder / f"{table}.csv"


Timer = Callable[[list[str]], tuple[float, float]]  # command -> (wall seconds, CPU seconds)


def loader() -> str:
    """Which loader the import baseline uses: the sqlite3 CLI when installed, else Python's."""
    return "sqlite3 CLI .import --csv" if shutil.which("sqlite3") else "python sqlite3 executemany"


def dump_rows(database: Path, folder: Path) -> Rows:
    """The ``packages``, ``versions`` and ``dist_tags`` rows of a mirror database as CSV files
    (BLOB columns as the UTF-8 text they hold; bytes that are not UTF-8 kept as they are), and
    the SQL of those tables and their indexes. Not timed: the baseline is given its rows."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    count = 0
    try:
        placeholders = ",".join("?" * len(TABLES))
        tables = conn.execute(f"SELECT sql FROM sqlite_schema WHERE type='table' AND name IN ({placeholders})"
                              " ORDER BY rowid", TABLES).fetchall()
        indexes = conn.execute(f"SELECT sql FROM sqlite_schema WHERE type='index' AND sql IS NOT NULL AND tbl_name"
                               f" IN ({placeholders}) ORDER BY rowid", TABLES).fetchall()
        (folder / "schema.sql").write_text(";\n".join(sql for (sql,) in tables) + ";\n")
        (folder / "indexes.sql").write_text(";\n".join(sql for (sql,) in indexes) + ";\n")
        for table in TABLES:
            with open(folder / f"{table}.csv", "w", newline="", encoding="utf-8", errors="surrogateescape") as out:
                writer = csv.writer(out)
                for row in conn.execute(f"SELECT * FROM {table}"):
                    writer.writerow(v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in row)
                    count += 1
    finally:
        conn.close()
    size = sum((folder / f"{table}.csv").stat().st_size for table in TABLES)
    return Rows(folder, count, size)


def export(files: Path, archive: Path, timer: Timer) -> list[Step]:
    """sha512sum of every file under ``files`` into ``files/SHA512SUMS``, then
    ``tar --zstd -cf archive`` of the whole folder."""
    (files / SUMS).unlink(missing_ok=True)
    # xargs runs sha512sum on thousands of files per process, as anyone would; the list is
    # written beside the files so that the archive carries it, as a bundle carries its index.
    hashed = timer(["sh", "-c", f"cd '{files}' && find . -type f ! -name {SUMS} -print0"
                                f" | xargs -0 sha512sum > {SUMS}"])
    listed = (files / SUMS).read_bytes().count(b"\n")
    if listed != sum(1 for path in files.rglob("*") if path.is_file()) - 1:
        raise RuntimeError(f"{SUMS} lists {listed} files, not every file of {files}")
    packed = timer(["tar", "--zstd", "-cf", str(archive), "-C", str(files), "."])
    # Information only, not part of the baseline's total: zstd on every core (-T0); plain
    # ``tar --zstd`` runs one zstd process, compressing on one thread, beside tar itself.
    threaded = archive.with_name(archive.name + ".T0")
    packed_t0 = timer(["tar", "-I", "zstd -T0", "-cf", str(threaded), "-C", str(files), "."])
    threaded.unlink()
    return [Step("sha512sum", *hashed), Step("tar_c", *packed), Step(INFO_T0, *packed_t0)]


def import_(archive: Path, into: Path, rows: Rows, timer: Timer) -> list[Step]:
    """``tar --zstd -xf`` into ``into``, ``sha512sum -c`` of every file, then the rows loaded
    into ``into/registry.sqlite3``."""
    into.mkdir(parents=True)
    unpacked = timer(["tar", "--zstd", "-xf", str(archive), "-C", str(into)])
    checked = timer(["sh", "-c", f"cd '{into}' && sha512sum --quiet --strict -c {SUMS}"])
    database = into / "registry.sqlite3"
    if shutil.which("sqlite3"):
        script = rows.folder / "load.sql"
        script.write_text(_cli_script(rows))
        loaded = timer(["sqlite3", "-bail", str(database), f".read '{script}'"])
    else:
        loaded = timer([sys.executable, __file__, str(database), str(rows.folder)])
    # Checked after the clock: a load that stored nothing would make the baseline look fast.
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        stored = sum(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES)
    finally:
        conn.close()
    if stored != rows.count:
        raise RuntimeError(f"the baseline's load stored {stored} rows of {rows.count}")
    return [Step("tar_x", *unpacked), Step("sha512sum_c", *checked), Step("sqlite_load", *loaded)]


def _cli_script(rows: Rows) -> str:
    imports = "\n".join(f".import --csv '{rows.csv(table)}' {table}" for table in TABLES)
    return (f"PRAGMA page_size={PAGE_SIZE};\nBEGIN;\n.read '{rows.schema}'\n{imports}\n"
            f".read '{rows.folder / 'indexes.sql'}'\nCOMMIT;\n")


def _python_load(database: Path, folder: Path) -> None:
    """The loader without the CLI: the same tables, rows and indexes, one transaction."""
    csv.field_size_limit(1 << 30)
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("BEGIN")
        for sql in (folder / "schema.sql").read_text().split(";\n"):
            if sql.strip():
                conn.execute(sql)
        for table in TABLES:
            with open(folder / f"{table}.csv", newline="", encoding="utf-8", errors="surrogateescape") as source:
                reader = csv.reader(source)
                first = next(reader, None)
                if first is None:
                    continue
                marks = ",".join("?" * len(first))
                # Empty strings stay empty strings, as the CLI's .import stores them.
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})",
                                 itertools.chain([first], reader))
        for sql in (folder / "indexes.sql").read_text().split(";\n"):
            if sql.strip():
                conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


if __name__ == "__main__":
    _python_load(Path(sys.argv[1]), Path(sys.argv[2]))

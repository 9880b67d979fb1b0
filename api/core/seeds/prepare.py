"""``prepare_seeds``: the three files, each read by a scan, in an order that lets references be
checked in the same pass, and the problems of all of them in one ``DataError``.

The rule it keeps: the user's files are only read, and the clean copies are published only when
no file has any problem. Files that others refer to are read first. What only the whole file can
tell is added here: a missing, unreadable or UTF-16 file, the lines that are not UTF-8, and the
first line of each duplicated key (found by a second, cheap pass, only when there are duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyroaring import BitMap

from api.core.seeds.output import Output
from api.core.seeds.problems import MAX_PROBLEMS, DataError, Duplicate, Problem, ProblemList
from api.core.seeds.reader import ReadError, Source, bad_utf8_lines
from api.core.seeds.scan import ROWS, Scan
from api.core.seeds.schema import SEED_FILES, Loaded
from api.core.seeds.values import ID_MASK


@dataclass(frozen=True)
class PreparedSeeds:
    """Where the clean CSVs were written, and how many data rows each has (by seed name)."""

    directory: Path
    row_counts: dict[str, int]


def _scan_file(
    data_dir: Path, name: str, loaded: dict[str, Loaded], output: Output, careful: bool
) -> tuple[list[Problem], int, Loaded | None]:
    """Read one file once (twice when it has duplicated keys): its problems (kept, count) and,
    when its structure and header were fine, what the other files need to know about it."""
    path = data_dir / name
    fail = ProblemList(name, output.fail)
    if not path.is_file():
        others = sorted(p.name for p in data_dir.iterdir() if p.name.lower() == name.lower() and p.is_file())
        hint = f" (found '{others[0]}'; file names are case-sensitive)" if others else ""
        expected = ", ".join(SEED_FILES)
        message = f"the file is missing from the data folder{hint}; expected the files {expected}"
        if path.exists():
            message = "the path exists but is not a regular file"
        fail.add(message)
        return list(fail.kept), fail.count, None
    try:
        with path.open("rb") as raw:
            start = raw.read(2)
        stream = path.open(encoding="utf-8-sig", newline=None)
    except OSError as err:
        fail.add(f"the file cannot be read: {err.strerror or err}")
        return list(fail.kept), fail.count, None
    with stream:
        if start in (b"\xff\xfe", b"\xfe\xff"):
            fail.add("the file is saved as UTF-16; save it as UTF-8 (CSV UTF-8) instead", line=1)
            return list(fail.kept), fail.count, None
        scan = Scan(name, Source(stream), loaded, output, output.open(name), careful=careful)
        try:
            scan.run()
        except UnicodeDecodeError:
            try:  # every line holding bytes that are not UTF-8
                for line, message, value in bad_utf8_lines(path):
                    fail.add(message, line=line, value=value)
            except ReadError as err:
                fail.clear()
                fail.add(f"the file cannot be read: {err}")
            return list(fail.kept), fail.count, None
        except ReadError as err:  # (an OSError while writing the copy is not the user's)
            fail.add(f"the file cannot be read: {err}")
            return list(fail.kept), fail.count, None
    kept, count = scan.problems()
    duplicates = {problem.key_id & ID_MASK for problem in kept if isinstance(problem, Duplicate)}
    first_lines: dict[int, int] = {}
    if duplicates:
        with path.open(encoding="utf-8-sig", newline=None) as stream:
            again = Scan(name, Source(stream), loaded, None, None, locate=BitMap(duplicates), careful=careful)
            again.run()
        first_lines = again.first_lines
    problems = [
        problem.problem(first_lines.get(problem.key_id & ID_MASK)) if isinstance(problem, Duplicate) else problem
        for problem in kept
    ]
    loaded_state = scan.loaded_state() if scan.mode == ROWS and scan.src.nul_line is None else None
    return problems, count, loaded_state


def _reading_order() -> list[str]:
    """Files that others refer to come first, so references are checked in the same pass."""
    referenced = {column.references for columns in SEED_FILES.values() for column in columns if column.references}
    return sorted(SEED_FILES, key=lambda name: name not in referenced)


def prepare_seeds(data_dir: Path, out_dir: Path, *, careful: bool = False) -> PreparedSeeds:
    """Validate the three CSVs in ``data_dir`` and write clean copies into ``out_dir``.

    Raises DataError listing every problem (nothing is written then) and ValueError when
    ``out_dir`` is ``data_dir`` (the user's files are never modified). ``careful=True`` reads
    and checks every record one by one, never a block at a time: slower, with the same result
    (for tests).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise ValueError(f"out_dir must not be the data folder itself: {out_dir}")
    if not data_dir.is_dir():
        raise DataError([Problem(str(data_dir), None, None, None, "the data folder does not exist")])
    output = Output(out_dir)
    try:
        kept: dict[str, list[Problem]] = {}
        total = 0
        loaded: dict[str, Loaded] = {}
        for name in _reading_order():
            kept[name], count, state = _scan_file(data_dir, name, loaded, output, careful)
            total += count
            if state is not None:
                loaded[name] = state
        if total:
            ordered = [problem for name in SEED_FILES for problem in kept[name]]
            ordered.sort(key=lambda p: (list(SEED_FILES).index(p.file), p.line or 0))
            raise DataError(ordered[:MAX_PROBLEMS], total)
        output.publish()
    finally:
        output.discard()
    return PreparedSeeds(
        directory=out_dir,
        row_counts={name.removesuffix(".csv"): loaded[name].rows for name in SEED_FILES},
    )

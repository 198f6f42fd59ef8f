"""Readers for the file formats corpora ship: delimited text (AVEC/SEWA, MuSe, Aff-Wild2, openSMILE CSV)
and ARFF (RECOLA gold standards, openSMILE ARFF). They return raw columns; units and alignment
are the importers' and `align`'s business.

Every defect is a `DataError` naming the file, the line where there is one, and what to do.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from emo.core.errors import DataError

DELIMITERS = (";", ",", "\t")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _is_number(text: str) -> bool:
    return bool(_NUMBER.match(text.strip().strip("'\"")))


def _first_lines(path: Path, n: int = 2) -> list[str]:
    """The first `n` non-blank lines of a text file."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    out.append(line.rstrip("\r\n"))
                    if len(out) == n:
                        break
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}).") from None
    if not out:
        raise DataError(f"{path}: the file is empty. Export it again.")
    return out


def _first_line(path: Path) -> str:
    return _first_lines(path, 1)[0]


def has_header(lines: list[str], sep: str) -> bool:
    """A first line is a header when some field of it is text where the next line has a number
    (`timestamp,1,2,3` over `0.50,…`; not `'Train_DE_01';0.0;…` over `'Train_DE_01';0.1;…`)."""
    first = lines[0].split(sep)
    if len(lines) < 2:
        return not all(_is_number(f) for f in first[1:])
    second = lines[1].split(sep)
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second))


def sniff(path: Path) -> str:
    """The delimiter of a text table: the one of `;`, `,`, tab that its first line holds most of."""
    line = _first_line(path)
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    if not counts[best]:
        raise DataError(
            f"{path}: the first line holds none of ';', ',' or tab, so it is not a table (first line: {line[:80]!r})."
        )
    return best


def read_delimited(
    path: str | Path,
    *,
    sep: str | None = None,
    names: list[str] | None = None,
    what: str = "file",
    text: tuple[str, ...] = (),
    quote: str = "'",
) -> pd.DataFrame:
    """A `;`/`,`/tab-separated table, with or without a header, `'quoted'` names unquoted.

    `sep=None` detects the delimiter; a given `sep` is checked (a `;` file read as `,` fails with
    the reason). A first line whose second field is not a number is the header; without one the
    columns are `names` (AVEC 2018 ships headerless files). Columns in `text` stay text (ids such
    as `0042`); `quote` is the quote character (`'` in openSMILE and AVEC files, `"` in plain CSV).
    A line with fewer or more fields than the others (a file cut short) is an error naming it.
    """
    path = Path(path)
    found = _delimiter(path, sep, what)
    header = has_header(_first_lines(path), found)
    if not header and names is None:
        raise DataError(
            f"{path}: the {what} has no header line, and this format needs one "
            f"(first line: {_first_line(path)[:80]!r})."
        )
    df = _read_text_table(path, found, header, names, what, text, quote)
    if not header:
        if len(df.columns) < len(names):
            raise DataError(
                f"{path}: a headerless {what} needs at least {len(names)} columns "
                f"({', '.join(names)}); it has {len(df.columns)}."
            )
        df.columns = list(names) + [f"col{j}" for j in range(len(names), len(df.columns))]
    df.columns = [str(c).strip().strip("'\"") for c in df.columns]
    df.attrs["first_line"] = 2 if header else 1
    if len(df) == 0:
        raise DataError(f"{path}: the {what} has a header but no rows.")
    return df


def _delimiter(path: Path, sep: str | None, what: str) -> str:
    """The file's delimiter; a given `sep` the first line does not hold at all is an error naming both."""
    found = sniff(path)
    if sep is None or found == sep:
        return found
    line = _first_line(path)
    if line.count(sep) == 0:
        shown = {";": "';'", ",": "','", "\t": "tab"}
        raise DataError(
            f"{path}: this {what} is {shown[found]}-separated, but this format's files are "
            f"{shown[sep]}-separated (first line: {line[:80]!r}). Check that the file is the "
            f"one meant here, or convert it."
        )
    return sep


def _read_text_table(
    path: Path, sep: str, header: bool, names: list[str] | None, what: str, text: tuple[str, ...], quote: str
) -> pd.DataFrame:
    """The file read by pyarrow, `text` columns as strings; a line cut short is an error naming it."""
    try:  # pyarrow's reader: several times faster than pandas' on wide numeric files
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(autogenerate_column_names=not header),
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=quote),
            convert_options=pacsv.ConvertOptions(
                null_values=["", "?", "NaN", "nan"],
                strings_can_be_null=True,
                column_types={c: pa.string() for c in text},
            ),
        )
        return table.to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _cut_short(path, sep, header, names, what) or DataError(
            f"{path}: cannot be read as a {sep!r}-separated table ({str(exc).splitlines()[0]}). Check that every "
            f"line has the same number of fields."
        ) from None


def _cut_short(path: Path, sep: str, header: bool, names: list[str] | None, what: str) -> DataError | None:
    """Why pyarrow could not read a delimited file, when a line is cut short (None: it is something else).
    Only on the error path, so the file is read again as plain lines."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = pd.Series(f.read().splitlines(), dtype=object)
    filled = np.flatnonzero(lines.str.strip() != "")
    if len(filled) < 2:
        return None
    first = lines[filled[0]].split(sep)
    columns = (
        [c.strip().strip("'\"") for c in first]
        if header
        else list(names) + [f"col{j}" for j in range(len(names), len(first))]
    )
    rows = filled[1:] if header else filled
    return short_line(path, lines.iloc[rows], rows + 1, sep, columns, what)


def short_line(
    path: Path, rows: pd.Series, lines: np.ndarray, sep: str, columns: list[str], what: str
) -> DataError | None:
    """The error for the first of `rows` (text, at file `lines`) with fewer fields than `columns`
    (None: there is none). A cut-short last line is what an interrupted export or copy leaves."""
    fields = rows.str.count(re.escape(sep)).to_numpy() + 1
    short = np.flatnonzero(fields < len(columns))
    if not len(short):
        return None
    k = int(short[0])
    have = f"{fields[k]} of the {len(columns)} fields ({', '.join(columns[fields[k] :])} missing)"
    if k == len(rows) - 1:
        return DataError(
            f"{path}: the last line ({lines[k]}) holds {have}: the {what} looks cut short. Export or "
            f"copy it again, or delete that line."
        )
    return DataError(
        f"{path}: line {lines[k]} holds {have}. Every line needs all {len(columns)} fields: fix that line."
    )


def read_arff(path: str | Path) -> pd.DataFrame:
    """An ARFF file (`@attribute` lines, then `@data`) as a table; `?` is missing."""
    path = Path(path)
    names, kinds = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}).") from None
    lines = text.splitlines()
    data_at = None
    for n, line in enumerate(lines):
        s = line.strip()
        low = s.lower()
        if low.startswith("@attribute"):
            parts = s.split(None, 2)
            if len(parts) < 3:
                raise DataError(f"{path}: line {n + 1} is not an @attribute NAME TYPE line: {s[:80]!r}.")
            names.append(parts[1].strip("'\""))
            kinds.append(parts[2].strip().lower())
        elif low.startswith("@data"):
            data_at = n + 1
            break
    if data_at is None:
        raise DataError(
            f"{path}: an ARFF file needs a '@data' line before its rows, and this one has none. "
            f"The file may be cut short: export it again."
        )
    if not names:
        raise DataError(f"{path}: no '@attribute' lines before '@data'; this is not an ARFF table.")
    rows_at = [i for i in range(data_at, len(lines)) if lines[i].strip() and not lines[i].lstrip().startswith("%")]
    if not rows_at:
        raise DataError(f"{path}: the ARFF file has no rows after '@data'.")
    rows = pd.Series([lines[i] for i in rows_at], dtype=object)
    if short := short_line(path, rows, np.array(rows_at) + 1, ",", names, "ARFF file"):
        raise short
    body = "\n".join(rows)
    try:
        df = pd.read_csv(
            io.StringIO(body),
            sep=",",
            header=None,
            names=names,
            quotechar="'",
            na_values=["?"],
            skipinitialspace=True,
            low_memory=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(
            f"{path}: the rows after '@data' do not match its {len(names)} attributes ({str(exc).splitlines()[0]})."
        ) from None
    df.attrs["arff_kinds"] = dict(zip(names, kinds))
    df.attrs["first_line"] = rows_at[0] + 1  # line numbers hold while the rows have no blank lines between
    return df


def read_any(
    path: str | Path, *, sep: str | None = None, names: list[str] | None = None, what: str = "file"
) -> pd.DataFrame:
    """`read_arff` for .arff files, else `read_delimited`."""
    path = Path(path)
    if path.suffix.lower() == ".arff":
        return read_arff(path)
    return read_delimited(path, sep=sep, names=names, what=what)


def numeric_column(df: pd.DataFrame, col: str, path: Path, what: str) -> np.ndarray:
    """Column `col` as float64; text in it is an error naming the line."""
    if col not in df.columns:
        raise DataError(
            f"{path}: no {col!r} column ({what}); its columns are {', '.join(map(str, df.columns[:8]))}"
            f"{' …' if len(df.columns) > 8 else ''}."
        )
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() & df[col].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        first = df.attrs.get("first_line", 2)
        raise DataError(
            f"{path}: column {col!r} ({what}) holds {df[col].iloc[row]!r} at line {row + first}, not a "
            f"number. Fix that line ({int(bad.sum())} such lines in all)."
        )
    return values.to_numpy(np.float64)


# Columns of a feature file that are not features: names, times, segment ids, ARFF class.
NOT_FEATURES = {
    "name",
    "instance_name",
    "frametime",
    "timestamp",
    "time",
    "segment_id",
    "class",
    "frame",
    "video_id",
    "filename",
    "start",
    "end",
    "valence",
    "arousal",
    "liking",
    "split",
}


def feature_block(df: pd.DataFrame, path: Path) -> tuple[np.ndarray, list[str]]:
    """(rows, D) float64 features: every numeric column that is not a name, time or class column.

    An ARFF `class` column of `?` (openSMILE writes one) is dropped; text in a numeric column is an
    error naming the line.
    """
    kinds = df.attrs.get("arff_kinds", {})
    cols = [c for c in df.columns if c.lower() not in NOT_FEATURES and kinds.get(c, "numeric") != "string"]
    if not cols:
        raise DataError(f"{path}: no feature columns besides {', '.join(map(str, df.columns))}.")
    block = df[cols]
    if not all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
        x = np.column_stack([numeric_column(df, c, path, "feature") for c in cols])
    else:
        x = block.to_numpy(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad))
        first = df.attrs.get("first_line", 2)
        raise DataError(
            f"{path}: feature {cols[c]!r} is missing or not finite at line {r + first} "
            f"({int(bad.any(axis=1).sum())} lines in all). Re-extract the features or drop those lines."
        )
    return x, [str(c) for c in cols]

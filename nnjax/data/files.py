"""Loading user data from CSV and NPZ files into a :class:`~nnjax.data.Dataset`.

Both loaders check the file on the host and fail with an error that names the problem: a missing
file, an unknown column or key, a non-numeric feature, a missing or non-finite value.

The task is inferred unless given: targets that are not numbers, or numbers that are all whole,
mean classification; anything else means regression. Classification targets are encoded as
codes ``0..k-1`` in sorted order (see :func:`~nnjax.data.encode_labels`); ``target_names`` keeps
the original values. Pass ``task=`` explicitly when whole-number targets are quantities.

Example:
  >>> import pathlib, tempfile
  >>> path = pathlib.Path(tempfile.mkdtemp()) / "fruit.csv"
  >>> _ = path.write_text("weight,diameter,fruit\\n150,7.5,apple\\n120,6.8,pear\\n160,7.9,apple\\n")
  >>> data = load_csv(path, target="fruit")
  >>> data.x.shape, data.y.tolist(), data.target_names
  ((3, 2), [0, 1, 0], ('apple', 'pear'))
"""

from __future__ import annotations

import csv
import math
import pathlib
import zipfile
from typing import Any, NamedTuple

import numpy as np

from nnjax.data.datasets import Dataset
from nnjax.data.encoding import encode_labels
from nnjax._base import checks
from nnjax._base.validation import check_features, check_targets

__all__ = ["CsvTable", "load_csv", "load_npz", "read_csv"]

_TASKS = ("classification", "regression")


def _existing_file(path: Any) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    return path


def _is_number(text: str) -> bool:
    value = checks.number(text)
    return value is not None and math.isfinite(value)


def _dataset(x: np.ndarray, y: np.ndarray, task: str | None, feature_names: tuple[str, ...],
             target_name: str, description: str) -> Dataset:
    """A Dataset from checked features and raw targets, inferring the task when None."""
    if task not in (None, *_TASKS):
        raise ValueError(f"task: expected None, 'classification' or 'regression', got {task!r}")
    numeric = y.dtype.kind in "biuf"
    if task is None:
        task = "classification" if not numeric or np.all(y == np.round(y)) else "regression"
    if task == "regression":
        if not numeric:
            raise ValueError(f"{target_name}: expected numeric targets for regression, got dtype {y.dtype}")
        y = check_targets(y, len(x), name=target_name).astype(np.float32)
        return Dataset(x, y, task, 0, feature_names, (target_name,), description)
    codes, classes = encode_labels(y)
    return Dataset(x, codes, task, len(classes), feature_names, tuple(str(c) for c in classes), description)


# ----------------------------------------------------------------------------------------------
# CSV


class CsvTable(NamedTuple):
    """A CSV file's header and data rows as text, with the file line of each row (for messages).

    Read by :func:`read_csv`; :func:`load_csv` and ``nnjax evaluate``/``nnjax predict`` read
    their CSV files through it, so a file is refused for the same reasons with the same words.
    """

    path: pathlib.Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def cells(self, name: str) -> list[str]:
        """The column ``name``'s cells, as text."""
        j = self.header.index(name)
        return [row[j] for row in self.rows]

    def numbers(self, name: str) -> np.ndarray:
        """The column ``name`` as float64; a missing, non-numeric or non-finite cell is refused with
        its row and line."""
        out = np.empty(len(self.rows), dtype=np.float64)
        for i, cell in enumerate(self.cells(name)):
            text, where = cell.strip(), f"row {i + 1}, line {self.lines[i]}"
            if not text:
                raise ValueError(f"column {name!r} has a missing value in {where}")
            value = checks.number(text)
            if value is None:
                raise ValueError(f"column {name!r} is not numeric (first bad value {text!r} in {where})")
            if not math.isfinite(value):
                raise ValueError(f"column {name!r} has a non-finite value {text!r} in {where}; remove or impute it")
            out[i] = value
        return out


def read_csv(path: Any, delimiter: str = ",") -> CsvTable:
    """A CSV file with a header row, as text: blank lines skipped, every row as long as the header.

    Raises:
      FileNotFoundError: no such file.
      ValueError: an empty file, text that is not UTF-8, no data row, duplicate column names, or a row
        of another length.
    """
    path = _existing_file(path)
    rows, lines = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as err:  # e.g. a latin-1 export: say which file, and what to do
        raise ValueError(f"{path}: expected UTF-8 text, got the byte 0x{err.object[err.start]:02x} that UTF-8 cannot "
                         "decode; save the file as UTF-8") from None
    if not rows:
        raise ValueError(f"{path}: expected a header row, got an empty file")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        duplicates = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: expected distinct column names, got duplicates {duplicates}")
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {len(header)} like the header")
    if len(rows) < 2:
        raise ValueError(f"{path}: expected at least one data row after the header, got none")
    return CsvTable(path, header, rows[1:], lines[1:])


def _target_column(table: CsvTable, name: str, task: str | None) -> np.ndarray:
    stripped = [c.strip() for c in table.cells(name)]
    if task == "regression" or all(_is_number(c) for c in stripped):
        return table.numbers(name)
    if "" in stripped:
        i = stripped.index("")
        raise ValueError(f"column {name!r} has a missing value in row {i + 1}, line {table.lines[i]}")
    return np.asarray(stripped)


def load_csv(path: Any, target: str, *, task: str | None = None, delimiter: str = ",") -> Dataset:
    """Loads a CSV file with a header row; every column but ``target`` is a numeric feature.

    Args:
      path: the file.
      target: the name of the target column.
      task: ``"classification"``, ``"regression"`` or None (inferred, see the module docs).
      delimiter: the field separator.

    Returns:
      A :class:`Dataset` with float32 features in file order (the target column removed).

    Raises:
      FileNotFoundError: no such file.
      ValueError: an unknown target column, a non-numeric feature column, a missing or non-finite
        value, rows of different lengths, or an empty file.
    """
    table = read_csv(path, delimiter)
    path, header = table.path, table.header
    if target not in header:
        raise ValueError(f"target: expected one of the columns {header}, got {target!r}")
    if len(header) < 2:
        raise ValueError(f"{path}: expected at least one feature column besides {target!r}, got none")
    feature_names = tuple(name for name in header if name != target)
    x = np.stack([table.numbers(name) for name in feature_names], axis=1)
    y = _target_column(table, target, task)
    return _dataset(check_features(x, name=str(path)), y, task, feature_names, target, f"Loaded from {path}.")


# ----------------------------------------------------------------------------------------------
# NPZ


def load_npz(path: Any, x_key: str = "x", y_key: str = "y", *, task: str | None = None) -> Dataset:
    """Loads features and targets from a NumPy ``.npz`` archive (``np.savez``).

    Args:
      path: the file.
      x_key: the name of the feature array, shape (n, n_features), numeric.
      y_key: the name of the target array, shape (n,) (or (n, k) for regression).
      task: ``"classification"``, ``"regression"`` or None (inferred, see the module docs).

    Returns:
      A :class:`Dataset`; feature names are ``x0, x1, ...``.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an npz archive, a missing key (the error lists the keys), object arrays,
        or features and targets that fail the checks of :func:`check_features`.
    """
    path = _existing_file(path)
    x_raw, y_raw = _read_npz(path, x_key, y_key)
    x = check_features(x_raw, name=f"{path.name}[{x_key!r}]")
    if y_raw.ndim == 0 or len(y_raw) != len(x):
        raise ValueError(f"{path.name}[{y_key!r}]: expected {len(x)} rows like {x_key!r}, got shape {y_raw.shape}")
    names = tuple(f"x{i}" for i in range(x.shape[1]))
    return _dataset(x, y_raw, task, names, y_key, f"Loaded from {path}.")


def _read_npz(path: pathlib.Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: expected an .npz archive (np.savez), could not read it ({err})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected an .npz archive (np.savez), got a single .npy array")
    with loaded as archive:
        missing = [k for k in (x_key, y_key) if k not in archive.files]
        if missing:
            raise ValueError(f"{path}: expected arrays named {missing}, got {sorted(archive.files)}")
        try:
            return archive[x_key], archive[y_key]
        except ValueError as err:  # object arrays need pickle, which is unsafe on untrusted files
            raise ValueError(f"{path}: expected numeric or string arrays, could not load them ({err})") from None

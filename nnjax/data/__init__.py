"""Host-side data handling: validation, encoding, scaling, splitting, text and datasets.

Everything here runs in NumPy on the host, before arrays go to a device, and nothing is jitted:

* ``validation``, ``hyperparameters``: the ``check_*`` functions every public nnjax function
  calls at its edge;
* ``encoding``: :func:`one_hot`, :func:`encode_labels`, :class:`Standardizer`, :func:`standardize`;
* ``splitting``: :func:`split`, a keyed (optionally stratified) shuffle split;
* ``text``: :class:`BagOfWords`, count vectors and token ids for short texts;
* ``datasets``: :func:`load_dataset`, bundled and generated datasets as a :class:`Dataset`;
* ``files``: :func:`load_csv`, :func:`load_npz` for user files;
* :func:`empty`, :func:`aligned`: host arrays a CPU device reads in place (no copy of large data).

Example:
  >>> from nnjax import data
  >>> ds = data.load_dataset("iris")
  >>> (x_train, y_train), (x_test, y_test) = data.split(0, ds.x, ds.y, stratify=ds.y)
  >>> scaler, x_train, x_test = data.standardize(x_train, x_test)
  >>> x_train.shape, x_test.shape
  ((120, 4), (30, 4))
"""

from nnjax._base.arrays import aligned as aligned
from nnjax._base.arrays import empty as empty
from nnjax.data.datasets import Dataset as Dataset
from nnjax.data.datasets import load_dataset as load_dataset
from nnjax.data.datasets import names as names
from nnjax.data.encoding import encode_labels as encode_labels
from nnjax.data.encoding import one_hot as one_hot
from nnjax.data.encoding import standardize as standardize
from nnjax.data.encoding import Standardizer as Standardizer
from nnjax.data.files import load_csv as load_csv
from nnjax.data.files import load_npz as load_npz
from nnjax._base.checks import check_fraction as check_fraction
from nnjax._base.checks import check_positive as check_positive
from nnjax._base.checks import check_positive_int as check_positive_int
from nnjax.data.splitting import split as split
from nnjax.data.splitting import split_sizes as split_sizes
from nnjax.data.text import ENGLISH_STOP_WORDS as ENGLISH_STOP_WORDS
from nnjax.data.text import PAD_ID as PAD_ID
from nnjax.data.text import UNKNOWN_ID as UNKNOWN_ID
from nnjax.data.text import BagOfWords as BagOfWords
from nnjax._base.validation import check_binary_labels as check_binary_labels
from nnjax._base.validation import check_features as check_features
from nnjax._base.validation import check_labels as check_labels
from nnjax._base.validation import check_signed_labels as check_signed_labels
from nnjax._base.validation import check_targets as check_targets

from nnjax._base import validation as _validation

__all__ = sorted({
    "ENGLISH_STOP_WORDS", "PAD_ID", "UNKNOWN_ID", "BagOfWords", "Dataset", "aligned", "empty", "Standardizer", "encode_labels",
    "load_csv", "load_dataset", "load_npz", "names", "one_hot", "split", "split_sizes", "standardize",
    *_validation.__all__,  # every check_* is importable from nnjax.data
})

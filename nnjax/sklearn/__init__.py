"""scikit-learn estimators backed by nnjax: ``MLPClassifier`` and ``MLPRegressor``.

They follow scikit-learn's ``sklearn.neural_network`` estimators (parameter names, defaults,
fitted attributes, ``partial_fit``, ``warm_start``, ``sample_weight``) and pass
``sklearn.utils.estimator_checks``; training is one compiled :func:`nnjax.fit` program, and
``n_seeds`` trains a population with ``jax.vmap`` and keeps the best. See docs/sklearn.md.

Example:
  >>> from sklearn.datasets import load_breast_cancer
  >>> from sklearn.pipeline import make_pipeline
  >>> from sklearn.preprocessing import StandardScaler
  >>> from nnjax.sklearn import MLPClassifier
  >>> X, y = load_breast_cancer(return_X_y=True)
  >>> clf = MLPClassifier((32,), early_stopping=True, max_iter=300, random_state=0)
  >>> model = make_pipeline(StandardScaler(), clf).fit(X, y)
  >>> model.score(X, y) > 0.9, clf.best_loss_ is None, clf.n_iter_ < 300
  (True, True, True)
"""

from nnjax.sklearn._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

"""Names of the Iris features and classes, importable without scikit-learn (the API image has none)."""

# Stable, unit-free names: they become Prometheus label values and MLflow signature columns.
FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASS_NAMES = ("setosa", "versicolor", "virginica")

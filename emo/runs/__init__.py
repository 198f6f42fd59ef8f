"""MLflow: the tracker and the run lifecycle (`tracking`), the logged model and its signature (`pyfunc`,
with `pyfunc_model`, the models-from-code file MLflow stores with it), the registry's champion
(`champion`) and links into the MLflow UI (`ui`)."""

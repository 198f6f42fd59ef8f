"""Everything MLflow, and the only package that imports it (with `pyfunc_model`, the models-from-code file
MLflow stores with each model):

- `tracker`: what an experiment logs to (the `Tracker` protocol; in memory or in an MLflow run);
- `lifecycle`: a run started, resumed or joined, and ended FINISHED or FAILED with the reason;
- `store`: the tracking store's name in messages, its hints, the sqlite schema created under a lock;
- `checkpoints`: a run's training checkpoint, written atomically and read as data only;
- `bundle`: the saved-model format both training and the pyfunc model use; `pyfunc`: the served model;
- `naming`: run names, tags, the logged model's name, the params and final-metric layout;
- `resume`: what may change when a run is continued; `queries`: what the rest of emo reads from the store;
- `reuse`: a matrix cell's earlier run found and copied; `champion`: the registry's best Fusion 4;
- `ui`: links into the MLflow UI and its saved view.
"""

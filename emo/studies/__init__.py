"""Many trainings as one Optuna study: the storage that waits out outages and the once-only claims
(`claims`), hyperparameter search (`tuning`), the thesis's experiment matrix (`matrix`) and running it
(`reproduce`)."""

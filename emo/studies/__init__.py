"""Many trainings as one Optuna study: the shared storage that waits out outages (`storage`) and its
once-only claims (`claims`), hyperparameter search (`tuning`), the thesis's experiment matrix (`matrix`)
and running it (`reproduce`)."""

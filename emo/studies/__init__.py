"""Many trainings as one Optuna study: the shared storage that waits out outages (`storage`), its
once-only claims (`claims`), the parent run and worker loop every shared study has (`worker`),
hyperparameter search (`tuning`, over `spaces`), the thesis's experiment matrix (`matrix`) and
running it (`reproduce`)."""

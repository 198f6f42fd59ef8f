"""What every layer shares: the settings and domain constants (`config`), the errors a user can meet
(`errors`), the metrics (`metrics`), where the arithmetic runs (`compute`) and
the one progress display of a long command (`progress`). It depends on no other layer."""

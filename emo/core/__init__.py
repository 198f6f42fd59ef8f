"""What every layer shares: the settings and domain constants (`config`), the errors a user can meet
(`errors`), the metrics (`metrics`) and where the arithmetic runs (`compute`). It depends on no other layer."""

"""Training: load the data, fit, evaluate, export the fast form, register, promote behind a gate."""

"""The model as both sides see it: the fast form, its decision table, where to find it, Iris names.

Shared by app.training (which writes the fast form) and app.serving (which loads it), so it
imports neither of them.
"""

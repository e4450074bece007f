"""Train, export and serve the Iris classifier."""

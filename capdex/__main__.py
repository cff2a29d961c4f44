"""`python -m capdex ...` runs the command line, as the `capdex` script does."""

from capdex.api.cli import main

main()

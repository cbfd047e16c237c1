"""The graded exercises of each lab: ``labNN.EXERCISES`` (ids, points, public and hidden cases).

This is instructor material: points and hidden cases live here, never in a submitted notebook.
See :mod:`cnnlab.exercise` for what an exercise is.
"""

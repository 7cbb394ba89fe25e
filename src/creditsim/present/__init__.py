"""Presenting results to people: the command line, charts and the HTML report."""

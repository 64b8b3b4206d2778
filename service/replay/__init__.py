"""`review-router replay`: play a labelled history through the REST API (data.py reads it, run.py
plays it, report.py prints and plots the figures)."""

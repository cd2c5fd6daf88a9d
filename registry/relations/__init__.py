"""Declarant/declared links and employer/employee employments revealed by DSNs and history
files."""

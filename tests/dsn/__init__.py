"""Tests of dsn."""

# Who a monthly declaration of the demo generator (registry/dsn/synth.py `generate`) concerns:
# the organisms it pays, and those that receive every employee's month (CNAM, France Travail).
MONTHLY_ORGANISMS = {"URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE", "FRANCE-TRAVAIL", "CNAM"}

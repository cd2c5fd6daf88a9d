"""The RCD (Répertoire Commun des Déclarants): companies and establishments, SIREN/SIRET
checks, the change feed and the Sirene stock import."""

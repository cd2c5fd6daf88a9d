"""What every domain shares: the database and its migrations, the one MetaData, sealing at rest
(files, rows, NIRs) and the clock."""
